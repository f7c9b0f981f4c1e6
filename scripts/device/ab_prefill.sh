#!/usr/bin/env bash
# Runs on the lent GPU machine: an A/B of the variants that build_variants.sh left in .devbin (carry
# ".devbin"). For each gr-NAME (GR_NAMES): bench/gemm_rate's checks and pass rates (128 tokens,
# L2-resident weights; then, for GR_SHORT, 32 tokens with weights streamed from HBM, as a short
# prompt's tiles run);
# then the prefill time of each mk-NAME (NAMES; NAME/FLAG,FLAG passes mk flags) at PROMPTS, ROUNDS
# rounds interleaved; then GPU
# parity of the variants named in PARITY. Everything that matters is printed (the device tool
# brings back only a few files).
set -uo pipefail
mkdir -p $OUT
bash scripts/device/devbin_unpack.sh
NAMES=${NAMES:-$(ls .devbin | sed -n 's/^mk-\([^.]*\)$/\1/p')}
for n in ${GR_NAMES:-$(ls .devbin | sed -n 's/^gr-\([^.]*\)$/\1/p')}; do
  echo "== gr-$n"
  .devbin/gr-$n > $OUT/gr-$n.txt 2>&1
  grep -E "rate  (wgmma|tma)|FAILED|SOME CHECKS" $OUT/gr-$n.txt
done
# The short-prompt regime (~30 s each: 256 MB of weights made on the host per width).
for n in ${GR_SHORT:-head unsw tma}; do
  [ -x .devbin/gr-$n ] || continue
  echo "== gr-$n, 32 tokens, weights from HBM"
  .devbin/gr-$n --tokens 32 --rows 65536 2>&1 | grep -E "rate  (wgmma|tma)"
done
# A name may carry mk flags after a slash, commas between them: "cp/--cluster-pairs".
for r in $(seq ${ROUNDS:-2}); do
  for b in $NAMES; do
    n=${b%%/*} flags=$([ "$n" != "$b" ] && echo "${b#*/}" | tr ',' ' ')
    echo "== prefill mk-$b, round $r"
    NO_TORCH=1 PROMPTS="${PROMPTS:-32 128 512}" MK_BIN=$PWD/.devbin/mk-$n MK_ARGS="$flags" LABEL=$(echo "$b" | tr '/,' '__')-$r \
      bash scripts/device/prefill_sweep.sh 2>/dev/null | tail -n +3
  done
done
for n in ${PARITY:-}; do bash scripts/device/parity_variant.sh $n; done
