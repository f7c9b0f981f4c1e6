#!/usr/bin/env bash
# Runs on the lent GPU machine: traces one decode step (at each CONTEXTS) and one prefill (PREFILL
# tokens) of a random-weight model of SHAPE, and prints the stage-by-stage chain
# (bench/trace_stages.py). Traces, SVGs and tables go to $OUT/trace/.
set -uo pipefail
bash scripts/device/devbin_unpack.sh  # .devbin's packed builds, should MK_BIN name one
SHAPE=${SHAPE:-llama-3.2-1b} CONTEXTS=${CONTEXTS:-32 1024} PREFILL=${PREFILL:-512}
MK_BIN=${MK_BIN:-$PWD/build/src/cli/mk} MODEL=/tmp/mk-bench-$SHAPE
mkdir -p $OUT/trace
[ -d $MODEL ] || python3 bench/make_model.py --shape $SHAPE --out $MODEL > /dev/null
for ctx in $CONTEXTS; do
  t=$OUT/trace/decode-$SHAPE-ctx$ctx
  $MK_BIN trace --model $MODEL --context $ctx --out $t.json --svg $t.svg ${TRACE_ARGS:-} > $t.txt 2>&1
  python3 bench/trace_stages.py $t.json --layers 0,7,15 >> $t.txt
  echo "== decode, context $ctx"; grep -v "Loading" $t.txt | tail -45
done
if [ "$PREFILL" != 0 ]; then
  t=$OUT/trace/prefill-$SHAPE-$PREFILL
  $MK_BIN trace --model $MODEL --prefill $PREFILL --out $t.json --svg $t.svg > $t.txt 2>&1
  python3 bench/trace_stages.py $t.json --layers 0,15 >> $t.txt
  echo "== prefill $PREFILL"; grep -v "Loading" $t.txt | tail -30
fi
