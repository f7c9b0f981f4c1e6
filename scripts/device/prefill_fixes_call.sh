#!/usr/bin/env bash
# Runs on the lent GPU machine (carry ".devbin"): session 32's prefill candidates, each built by
# build_variants.sh from HEAD's tree plus scripts/device/experiments/ patches: ep =
# tight_epilogues, eq = ep + qkv_rope_rows, ts = tail_split, rt = row_tiles, ah = attn_key_halves,
# all = ep ts rt ah, allq = all + qkv_rope_rows; pheq, phts, phah: PHASES builds; dt =
# prefill_diet (a measurement: the prefill kernel 113 KB smaller, its CUDA-core several-row tiles
# one row at a time).
#   1. GPU parity of `allq`, with the patches' tests (the tail pieces and the 128-row tiles against
#      whole and 64-row tiles; the long 1B-shape prefill; the tiny models, whose prefill attention
#      takes key halves; the 1B shape's 32-token prompt), of dt with the tests that reach its path,
#      and of head's tiny models (~8 min: a call of its own).
#   2. Qwen2.5-1.5B's 512-token prefill by phase with pheq, phts and phah (~1.5 min).
#   3. Prefill A/B, two rounds interleaved: Qwen2.5-1.5B 512 (head ep eq ts allq) (~5 min).
#   4. Llama-3.2-1B 512 and 128 (head eq rt ah allq) (~5 min).
#   5. Llama-3.2-3B 512 (head rt allq; the model is made first, ~1 min) (~5 min).
#   6. Nsight Compute on head's Qwen 512 prefill (ncu_step.sh: stall reasons, hottest lines).
#   7. The code-size measurement: Qwen and Llama 512, head dt, two rounds (~3 min).
# STEPS: which to run (default "1"; then "3", "4", "5", "2 6", "7": each one call).
set -uo pipefail
bash scripts/device/devbin_unpack.sh > /dev/null
steps=" ${STEPS:-1} "
ab() {  # SHAPE NAMES PROMPTS
  SHAPE=$1 NAMES="$2" GR_NAMES=" " GR_SHORT=" " PROMPTS="$3" ROUNDS=2 timeout ${AB_TIMEOUT:-330} \
    bash scripts/device/ab_prefill.sh
}
{
  nvidia-smi --query-gpu=name --format=csv,noheader
  if [[ $steps == *" 1 "* ]]; then
    echo "== parity mk-head, tiny models"
    MK_BIN=$PWD/.devbin/mk-head timeout 150 python3 -m pytest -q -k tiny_models_on_gpu tests/py/test_gpu_parity.py \
      > $OUT/parity-head.log 2>&1
    tail -1 $OUT/parity-head.log
    K="long_prefill_1b_shape or tiny_models_on_gpu or short_last_token_block or tail_pieces or wide_row_tiles or llama_3_2_1b_shape_on_gpu" \
      PARITY_TIMEOUT=330 bash scripts/device/parity_variant.sh allq
    K="long_prefill_1b_shape or short_last_token_block" PARITY_TIMEOUT=120 bash scripts/device/parity_variant.sh dt
    grep -E "^FAILED" $OUT/parity-head.log $OUT/parity-allq.log $OUT/parity-dt.log
  fi
  if [[ $steps == *" 2 "* ]]; then
    for v in pheq phts phah; do
      echo "== phases, mk-$v"
      MK_BIN=$PWD/.devbin/mk-$v SHAPE=qwen2.5-1.5b CONTEXTS=" " PREFILL=512 bash scripts/device/trace_run.sh \
        2>&1 | grep -E "^\| (qkv_rope|attn_partial|o_proj|gate_up|down) |^L0\.|per layer"
      mv $OUT/trace/prefill-qwen2.5-1.5b-512.txt $OUT/phases-$v.txt
    done
    rm -rf $OUT/trace
  fi
  [[ $steps == *" 3 "* ]] && ab qwen2.5-1.5b "head ep eq ts allq" 512
  [[ $steps == *" 4 "* ]] && ab llama-3.2-1b "head eq rt ah allq" "128 512"
  [[ $steps == *" 5 "* ]] && ab llama-3.2-3b "head rt allq" 512
  if [[ $steps == *" 6 "* ]]; then
    PREFILL=512 SHAPE=qwen2.5-1.5b MK_BIN=$PWD/.devbin/mk-head bash scripts/device/ncu_step.sh
  fi
  if [[ $steps == *" 7 "* ]]; then
    ab qwen2.5-1.5b "head dt" 512
    ab llama-3.2-1b "head dt" 512
  fi
} 2>&1 | grep -v "Writing model shards\|Loading weights" | tee $OUT/summary.txt
cd $OUT && tar czf logs.tgz parity-*.log phases-*.txt prefill_sweep-*.md 2>/dev/null && rm -f parity-*.log phases-*.txt prefill_sweep-*.md
