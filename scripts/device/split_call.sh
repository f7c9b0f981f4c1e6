#!/usr/bin/env bash
# Runs on the lent GPU machine (carry ".devbin"), one call of ~6-9 minutes: prefill variants
# (VARIANTS, default qn: each a .devbin/mk-NAME that build_variants.sh made from a patch) against
# main's prefill (mk-head).
#   1. mk-head's GPU parity on the tiny models (their prefill's tensor-core paths: qwen2_d128's
#      128-wide attention, qwen2_wide's head blocks).
#   2. Each variant's GPU parity where prefill changes (K: a pytest -k expression; default the
#      420-token 1B-shape prefill, the tiny models, the short last token block), and its gr-NAME's
#      GEMM pass checks where build_variants.sh made one.
#   3. Prefill time, interleaved, two rounds: Qwen2.5-1.5B at 512 tokens, then Llama-3.2-1B at
#      PROMPTS (default 128 512) (traced span of one program run, prefill_sweep.sh).
# Tables go to $OUT/summary.txt. PARITY=0 skips steps 1-2, AB=0 step 3 (parity of three variants
# and the A/B may not fit one call's 600 s).
#   VARIANTS="g96n qs qt" AB=0 bash scripts/device/split_call.sh; then PARITY=0 the same
set -uo pipefail
bash scripts/device/devbin_unpack.sh > /dev/null
vs=${VARIANTS:-${VARIANT:-qn}}
{
  nvidia-smi --query-gpu=name --format=csv,noheader
  if [ "${PARITY:-1}" != 0 ]; then
  echo "== parity mk-head, tiny models"
  MK_BIN=$PWD/.devbin/mk-head timeout 150 python3 -m pytest -q -k tiny_models_on_gpu tests/py/test_gpu_parity.py \
    > $OUT/parity-head.log 2>&1
  tail -1 $OUT/parity-head.log
  grep -E "^FAILED" $OUT/parity-head.log
  for v in $vs; do
    K="${K:-long_prefill_1b_shape or tiny_models_on_gpu or short_last_token_block}" PARITY_TIMEOUT=${PARITY_TIMEOUT:-150} \
      bash scripts/device/parity_variant.sh $v
    grep -E "^FAILED" $OUT/parity-$v.log
    [ -x .devbin/gr-$v ] && { .devbin/gr-$v --check 2>&1 | grep -E "FAILED|passed"; }
  done
  fi
  [ "${AB:-1}" = 0 ] && exit 0
  SHAPE=qwen2.5-1.5b NAMES="head $vs" GR_NAMES=" " GR_SHORT=" " PROMPTS=512 ROUNDS=2 timeout 240 \
    bash scripts/device/ab_prefill.sh
  NAMES="head $vs" GR_NAMES=" " GR_SHORT=" " PROMPTS="${PROMPTS:-128 512}" ROUNDS=2 timeout 150 \
    bash scripts/device/ab_prefill.sh
} 2>&1 | grep -v "Writing model shards\|Loading weights" | tee $OUT/summary.txt
cd $OUT && tar czf logs.tgz parity-*.log prefill_sweep-*.md 2>/dev/null && rm -f parity-*.log prefill_sweep-*.md
