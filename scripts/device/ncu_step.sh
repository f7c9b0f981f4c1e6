#!/usr/bin/env bash
# Runs on the lent GPU machine: Nsight Compute on one decode step of a bench shape (the decode
# build, mk::cuda::megakernel<(bool)0, ...>) or, with PREFILL=N, on one N-token prefill with no
# context before it (the prefill build, megakernel<(bool)1, ...>; `mk trace --prefill` runs it
# twice, LAUNCH_SKIP=1 takes the second), clocks as they run (no locking), with warp-state and
# source-level sampling; prints the speed-of-light summary, the warp stall reasons and the 40 SASS
# instructions with the most stall samples, then those with the most shared memory bank conflicts.
# The report and the SASS page's CSV go to $OUT/ncu/ (bench/ncu_lines.py maps it to source lines
# here). (Was ncu_decode.sh.)
set -uo pipefail
bash scripts/device/devbin_unpack.sh  # .devbin's packed builds, should MK_BIN name one
SHAPE=${SHAPE:-llama-3.2-1b} MK_BIN=${MK_BIN:-$PWD/build/src/cli/mk} MODEL=/tmp/mk-bench-$SHAPE
mkdir -p $OUT/ncu
[ -d $MODEL ] || python3 bench/make_model.py --shape $SHAPE --out $MODEL > /dev/null
PREFILL=${PREFILL:-0}
if [ "$PREFILL" != 0 ]; then
  build=1 step_args="--prefill $PREFILL --context 0" skip=${LAUNCH_SKIP:-1}
else
  build=0 step_args="--context 32" skip=${LAUNCH_SKIP:-0}
fi
timeout 400 ncu --clock-control none --kernel-name-base demangled --kernel-name "regex:megakernel<\(bool\)$build" \
  --launch-skip $skip --launch-count 1 --section SpeedOfLight --section WarpStateStats --section SourceCounters \
  -o $OUT/ncu/step $MK_BIN trace --model $MODEL $step_args --out /tmp/ncu_trace.json --svg /tmp/ncu_trace.svg \
  ${TRACE_ARGS:-} > $OUT/ncu/log.txt 2>&1
tail -3 $OUT/ncu/log.txt
ncu --import $OUT/ncu/step.ncu-rep --page details > $OUT/ncu/details.txt 2>&1
grep -E "Frequency|Throughput|Duration|Warp Cycles|Eligible" $OUT/ncu/details.txt | head -20
# Warp stall reasons, cycles per issued instruction each: "no_instruction" is instruction fetch (the
# decode kernel's code is 285-470 KB, the prefill kernel's ~800 KB: far more than an SM's
# instruction caches hold).
ncu --import $OUT/ncu/step.ncu-rep --page raw > $OUT/ncu/raw.txt 2>&1
grep -E "smsp__average_warps_issue_stalled_[a-z_]+_per_issue_active.ratio" $OUT/ncu/raw.txt | awk '{print $NF, $1}' | sort -g -r | head -14
gzip -f $OUT/ncu/raw.txt
# The hottest lines of a source page's CSV (SASS, or CUDA source lines), by stall samples.
top_lines() { python3 bench/ncu_lines.py "$1"; }
ncu --import $OUT/ncu/step.ncu-rep --page source --print-source sass --csv > $OUT/ncu/sass.csv 2>&1
top_lines $OUT/ncu/sass.csv
# Shared memory bank conflicts by SASS instruction: the wavefronts past the ideal (session 44 found
# the decode input row's 4-way conflicts by reasoning; this finds the rest).
echo "== shared memory wavefronts past the ideal (bank conflicts), by SASS instruction"
python3 bench/ncu_lines.py $OUT/ncu/sass.csv --column "Shared Excessive" --top 20
gzip -f $OUT/ncu/sass.csv
# By CUDA source line: not here. This ncu takes --import-source only while it profiles, and then
# it looks for the sources at the paths the build recorded (-lineinfo), which are this machine's
# checkout, not the lent one's. bench/ncu_lines.py maps sass.csv.gz to functions, files and lines
# on the machine that built the binary (nvdisasm -g of its cubin; its docstring says how).
