#!/usr/bin/env bash
# Runs on the lent GPU machine: time to first token by prompt length, ours against PyTorch's
# prefill (eager, and the same kernels replayed as a CUDA graph), on a random-weight model of SHAPE.
# Ours is the traced span of one prefill program run (`mk trace --prefill N`: GPU time, as the
# baseline's CUDA events measure). Prints one line per length; the table also goes to $OUT.
# NO_TORCH=1 skips the baseline (comparing builds: run it once); LABEL names the table's file;
# MK_ARGS: more flags for mk trace.
set -uo pipefail
bash scripts/device/devbin_unpack.sh  # .devbin's packed builds, should MK_BIN name one
SHAPE=${SHAPE:-llama-3.2-1b} PROMPTS=${PROMPTS:-16 32 64 128 256 512}
MK_BIN=${MK_BIN:-$PWD/build/src/cli/mk} MODEL=/tmp/mk-bench-$SHAPE
[ -d $MODEL ] || python3 bench/make_model.py --shape $SHAPE --out $MODEL > /dev/null
mkdir -p $OUT
T=$OUT/prefill_sweep${LABEL:+-$LABEL}.md
echo "| prompt | megakernel (ms) | torch eager (ms) | torch CUDA graph (ms) |" | tee $T
echo "|---|---|---|---|" | tee -a $T
for n in $PROMPTS; do
  $MK_BIN trace --model $MODEL --prefill $n --context 0 --out /tmp/sweep.json --svg /tmp/sweep.svg ${MK_ARGS:-} > /dev/null 2>&1
  ours=$(python3 -c "
import json
t = json.load(open('/tmp/sweep.json')); ev = t['traceEvents'] if isinstance(t, dict) else t
xs = [e for e in ev if e.get('ph') == 'X']
print(f\"{(max(e['ts'] + e['dur'] for e in xs) - min(e['ts'] for e in xs)) / 1000:.3f}\")")
  torch="- | -"
  [ -n "${NO_TORCH:-}" ] || torch=$(python3 bench/torch_baseline.py --model $MODEL --contexts "" --no-hf --prompt $n 2>/dev/null | python3 -c "
import json, sys
rows = {r['path']: r['ttft_ms'] for r in json.load(sys.stdin)['rows']}
print(f\"{rows.get('torch_eager_prefill', float('nan')):.3f} | {rows.get('torch_graph_prefill', float('nan')):.3f}\")")
  echo "| $n | $ours | $torch |" | tee -a $T
done
