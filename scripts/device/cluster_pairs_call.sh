#!/usr/bin/env bash
# Runs on the lent GPU machine (carry ".devbin"): the cluster-pair experiment
# (scripts/device/experiments/cluster_pairs.patch: .devbin/mk-cp and gr-cp; with
# cluster_pairs_qkv.patch on top, QKV's tiles paired too: mk-cpq; build_variants.sh
# VARIANTS="cp:cluster_pairs cpq:cluster_pairs+cluster_pairs_qkv").
#   1. gr-cp: the GEMM pass's forms against the host (tma-pair included), then their rates; a hang
#      of the pair form ends at the timeout.
#   2. GPU parity of each of PARITY (default "cp cpq") with its patches' tests
#      (test_cluster_pairs_match_single_tiles_1b_shape: logits with --cluster-pairs equal to those
#      without; the 420-token prefill; not the tiny models: their prompts make one token block),
#      ~3 minutes each.
#   3. Prefill A/B, two rounds interleaved: mk-head, mk-cp without the flag (its kernel changes
#      alone), mk-cp and mk-cpq with --cluster-pairs; Qwen2.5-1.5B at 512 tokens, then Llama-3.2-1B
#      at 512 (~4 minutes).
# STEPS: which of 1 2 3 to run (default all: more than one call's 600 s; STEPS="1 2", then 3).
set -uo pipefail
bash scripts/device/devbin_unpack.sh > /dev/null
steps=${STEPS:-1 2 3}
{
  nvidia-smi --query-gpu=name --format=csv,noheader
  if [[ " $steps " == *" 1 "* ]]; then
    echo "== gr-cp"
    timeout ${GR_TIMEOUT:-180} .devbin/gr-cp > $OUT/gr-cp.txt 2>&1
    echo "gr-cp rc $?"
    grep -E "tma-pair.*FAILED|rate  (tma|tma-pair) |all checks|SOME CHECKS" $OUT/gr-cp.txt
  fi
  if [[ " $steps " == *" 2 "* ]]; then
    for v in ${PARITY:-cp cpq}; do
      K="cluster_pairs or long_prefill_1b_shape" PARITY_TIMEOUT=${PARITY_TIMEOUT:-200} \
        bash scripts/device/parity_variant.sh $v
      grep -E "^FAILED|Timeout" $OUT/parity-$v.log
    done
  fi
  if [[ " $steps " == *" 3 "* ]]; then
    SHAPE=qwen2.5-1.5b NAMES="head cp cp/--cluster-pairs cpq/--cluster-pairs" GR_NAMES=" " GR_SHORT=" " PROMPTS=512 ROUNDS=2 \
      timeout 240 bash scripts/device/ab_prefill.sh
    NAMES="head cp cp/--cluster-pairs cpq/--cluster-pairs" GR_NAMES=" " GR_SHORT=" " PROMPTS=512 ROUNDS=2 timeout 200 \
      bash scripts/device/ab_prefill.sh
  fi
} 2>&1 | grep -v "Writing model shards\|Loading weights" | tee $OUT/summary.txt
cd $OUT && tar czf logs.tgz gr-*.txt parity-*.log prefill_sweep-*.md 2>/dev/null && rm -f gr-*.txt parity-*.log prefill_sweep-*.md
