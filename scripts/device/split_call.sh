#!/usr/bin/env bash
# Runs on the lent GPU machine (carry ".devbin"), one call of ~6 minutes: a prefill variant
# (VARIANT, default qn: qkv_narrow.patch; sk: prefill_split_long.patch) against main's prefill
# (mk-head).
#   1. The variant's GPU parity where prefill changes: the 420-token 1B-shape prefill, the tiny
#      models, the GEMM passes.
#   2. Prefill time, interleaved, two rounds: Llama-3.2-1B at 128 / 512 / 1024 tokens and
#      Qwen2.5-1.5B at 512 (traced span of one program run, prefill_sweep.sh).
# Tables go to $OUT/summary.txt.
set -uo pipefail
bash scripts/device/devbin_unpack.sh > /dev/null
v=${VARIANT:-qn}
{
  nvidia-smi --query-gpu=name --format=csv,noheader
  K="long_prefill_1b_shape or tiny_models_on_gpu or gemm" PARITY_TIMEOUT=200 bash scripts/device/parity_variant.sh $v
  grep -E "^FAILED" $OUT/parity-$v.log
  NAMES="head $v" GR_NAMES=" " GR_SHORT=" " PROMPTS="${PROMPTS:-128 512 1024}" ROUNDS=2 timeout 200 \
    bash scripts/device/ab_prefill.sh
  SHAPE=qwen2.5-1.5b NAMES="head $v" GR_NAMES=" " GR_SHORT=" " PROMPTS=512 ROUNDS=2 timeout 150 \
    bash scripts/device/ab_prefill.sh
} 2>&1 | grep -v "Writing model shards\|Loading weights" | tee $OUT/summary.txt
