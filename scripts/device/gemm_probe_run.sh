#!/usr/bin/env bash
# Runs on the lent GPU machine: session 16's open questions about prefill's wgmma pass, in one call
# (docs/PERFORMANCE.md, "Next steps as of session 16"). Needs the binaries that session left in
# .devbin (carry ".devbin"): gr_<probe> built from bench/gemm_rate.cu with
# scripts/device/experiments/gemm_probe.patch (-DMK_PROBE_<probe>), gemm_batched.patch or
# gemm_sw128.patch; mk-<name> built by build_devbin.sh with the patch of that name (main: none).
# Prints the wgmma pass rates of each probe, the prefill time of each mk build, then GPU parity
# (and the GEMM pass checks) of MK_PARITY (default: main).
set -uo pipefail
mkdir -p $OUT
for v in ${PROBES:-BASE NO_FENCE NO_MMA NO_LOAD BATCH SW128}; do
  [ -x .devbin/gr_$v ] || { echo "== gr_$v: missing"; continue; }
  echo "== gr_$v"
  .devbin/gr_$v > $OUT/gemm_rate-$v.txt 2>&1
  grep -E "rate  wgmma|FAILED|all checks|SOME CHECKS|error" $OUT/gemm_rate-$v.txt
done
for b in ${BINS:-main sel batch sw128 tag3}; do
  [ -x .devbin/mk-$b ] || { echo "== mk-$b: missing"; continue; }
  echo "== prefill mk-$b"
  NO_TORCH=1 PROMPTS="${PROMPTS:-32 512}" MK_BIN=$PWD/.devbin/mk-$b LABEL=$b bash scripts/device/prefill_sweep.sh 2>&1 | tail -n +3
done
for b in ${MK_PARITY:-main}; do
  echo "== parity mk-$b"
  MK_BIN=$PWD/.devbin/mk-$b timeout 300 python3 -m pytest -q -x tests/py/test_gpu_parity.py tests/py/test_greedy_loop.py \
    tests/py/test_gemm_pass_gpu.py > $OUT/parity-$b.log 2>&1
  tail -1 $OUT/parity-$b.log
done
