#!/usr/bin/env bash
# Runs on the lent GPU machine (carry ".devbin"): the checks of a landed commit, by .devbin's builds of
# it (build_variants.sh: head = the tree, ah = head + attn_key_halves.patch, dt = head +
# prefill_diet.patch; PHASES=1: ph, phah). STEPS, each one call:
#   1. ah's prefill A/B against head: Qwen2.5-1.5B at 512, Llama-3.2-1B at 128 and 512, two rounds;
#      ah's parity (the tests that reach prefill attention: the tiny models' units of 4 items take
#      key halves) (~5 min). Session 34 had ah at -1.8% on Qwen and -1.1% on Llama 512 (one round).
#   2. the README rows on this card (readme_rows.sh; ~5 min); on an H200, its first rows since 17c2df9.
#   3. the 3B's rows (ROWS="llama-3.2-3b:32,1024"; its 6.4 GB of weights written first).
#   4. 512-token prefills by phase (build mk-ph, mk-phah with PHASES=1 build_variants.sh, and mk-dt):
#      Llama-3.2-3B and Qwen2.5-1.5B with mk-ph, Qwen with mk-phah; then head against dt (the code-size measurement), Qwen and Llama-1B 512, two rounds.
#   5. Nsight Compute on head's Qwen2.5-1.5B 512-token prefill (ncu_step.sh), now with its table by
#      CUDA source line (--import-source on).
set -uo pipefail
bash scripts/device/devbin_unpack.sh > /dev/null
steps=" ${STEPS:-1} "
ab() {  # SHAPE NAMES PROMPTS ROUNDS
  SHAPE=$1 NAMES="$2" GR_NAMES=" " GR_SHORT=" " PROMPTS="$3" ROUNDS=$4 timeout ${AB_TIMEOUT:-300} bash scripts/device/ab_prefill.sh \
    2>&1 | grep -E "^== prefill|^\| [0-9]"
}
{
  nvidia-smi --query-gpu=name --format=csv,noheader
  if [[ $steps == *" 1 "* ]]; then
    ab qwen2.5-1.5b "head ah" 512 2
    ab llama-3.2-1b "head ah" "128 512" 2
    K="tiny_models_on_gpu or llama_3_2_1b_shape_on_gpu or long_prefill_1b_shape or short_last_token_block or kv_splits" \
      PARITY_TIMEOUT=150 bash scripts/device/parity_variant.sh ah
    grep -E "^FAILED" $OUT/parity-*.log
  fi
  [[ $steps == *" 2 "* ]] && BIN=head bash scripts/device/readme_rows.sh
  [[ $steps == *" 3 "* ]] && BIN=head ROWS="llama-3.2-3b:32,1024" BENCH_TIMEOUT=400 bash scripts/device/readme_rows.sh
  if [[ $steps == *" 4 "* ]]; then
    for run in llama-3.2-3b:ph qwen2.5-1.5b:ph qwen2.5-1.5b:phah; do
      shape=${run%%:*} v=${run#*:}
      echo "== phases, $shape, mk-$v"
      MK_BIN=$PWD/.devbin/mk-$v SHAPE=$shape CONTEXTS=" " PREFILL=512 bash scripts/device/trace_run.sh \
        2>&1 | grep -E "^\| (qkv_rope|attn_partial|o_proj|gate_up|down|attn_norm|mlp_norm) |^L0\.|per layer"
      mv $OUT/trace/prefill-$shape-512.txt $OUT/phases-$shape-$v.txt
    done
    rm -rf $OUT/trace
    ab qwen2.5-1.5b "head dt" 512 2
    ab llama-3.2-1b "head dt" 512 2
  fi
  if [[ $steps == *" 5 "* ]]; then
    PREFILL=512 SHAPE=qwen2.5-1.5b MK_BIN=$PWD/.devbin/mk-head bash scripts/device/ncu_step.sh
  fi
} 2>&1 | grep -v "Writing model shards\|Loading weights" | tee $OUT/summary.txt
cd $OUT && tar czf logs.tgz parity-*.log phases-*.txt prefill_sweep-*.md bench-*.log 2>/dev/null &&
  rm -f parity-*.log phases-*.txt prefill_sweep-*.md bench-*.log
