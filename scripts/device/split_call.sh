#!/usr/bin/env bash
# Runs on the lent GPU machine (carry ".devbin"), one call of ~6 minutes: prefill_split_long.patch
# (mk-sk: o_proj and down by input ranges at long prompts too, wherever that lowers what the busiest
# SM reads from L2) against main's prefill (mk-head).
#   1. mk-sk's GPU parity where the patch changes the program: the 420-token 1B-shape prefill (4
#      token blocks, now split), the tiny models, the GEMM passes.
#   2. Prefill time, interleaved, two rounds: Llama-3.2-1B at 256 / 512 / 1024 tokens and
#      Qwen2.5-1.5B at 512 (traced span of one program run, prefill_sweep.sh).
# Tables go to $OUT/summary.txt.
set -uo pipefail
bash scripts/device/devbin_unpack.sh > /dev/null
{
  nvidia-smi --query-gpu=name --format=csv,noheader
  K="long_prefill_1b_shape or tiny_models_on_gpu or gemm" PARITY_TIMEOUT=200 bash scripts/device/parity_variant.sh sk
  grep -E "^FAILED" $OUT/parity-sk.log
  NAMES="head sk" GR_NAMES=" " GR_SHORT=" " PROMPTS="256 512 1024" ROUNDS=2 timeout 120 bash scripts/device/ab_prefill.sh
  SHAPE=qwen2.5-1.5b NAMES="head sk" GR_NAMES=" " GR_SHORT=" " PROMPTS=512 ROUNDS=2 timeout 150 \
    bash scripts/device/ab_prefill.sh
} 2>&1 | grep -v "Writing model shards\|Loading weights" | tee $OUT/summary.txt
