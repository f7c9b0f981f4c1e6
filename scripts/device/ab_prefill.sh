#!/usr/bin/env bash
# Runs on the lent GPU machine: an A/B of the variants that build_variants.sh left in .devbin (carry
# ".devbin"). For each gr-NAME (GR_NAMES): bench/gemm_rate's checks and pass rates (128 tokens,
# L2-resident weights; then, for GR_SHORT, 32 tokens with weights streamed from HBM, as a short
# prompt's tiles run);
# then the prefill time of each mk-NAME (NAMES) at PROMPTS, ROUNDS rounds interleaved; then GPU
# parity of the variants named in PARITY. Everything that matters is printed (the device tool
# brings back only a few files).
set -uo pipefail
mkdir -p $OUT
NAMES=${NAMES:-$(ls .devbin | sed -n 's/^mk-//p')}
for n in ${GR_NAMES:-$(ls .devbin | sed -n 's/^gr-//p')}; do
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
for r in $(seq ${ROUNDS:-2}); do
  for n in $NAMES; do
    echo "== prefill mk-$n, round $r"
    NO_TORCH=1 PROMPTS="${PROMPTS:-32 128 512}" MK_BIN=$PWD/.devbin/mk-$n LABEL=$n-$r \
      bash scripts/device/prefill_sweep.sh 2>/dev/null | tail -n +3
  done
done
# A patched variant's parity runs with its patch applied to this copy of the tree (its tests and
# gemm_rate may change with it), as .devbin/variants.txt records; taken off again afterwards.
for n in ${PARITY:-}; do
  patch_file=$(awk -v n=$n '$1 == n && $2 != "-" {print $2}' .devbin/variants.txt 2>/dev/null)
  echo "== parity mk-$n${patch_file:+ ($patch_file applied)}"
  [ -n "$patch_file" ] && patch -s -p1 < $patch_file
  MK_BIN=$PWD/.devbin/mk-$n timeout ${PARITY_TIMEOUT:-300} python3 -m pytest -q tests/py/test_gpu_parity.py \
    tests/py/test_greedy_loop.py tests/py/test_gemm_pass_gpu.py > $OUT/parity-$n.log 2>&1
  tail -1 $OUT/parity-$n.log
  [ -n "$patch_file" ] && patch -s -R -p1 < $patch_file
done
