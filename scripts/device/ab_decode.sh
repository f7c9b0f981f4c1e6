#!/usr/bin/env bash
# Runs on the lent GPU machine: an A/B of decode speed between mk binaries built here
# (scripts/device/build_variants.sh: .devbin/mk-<name>.xz, unpacked first; carry ".devbin"), on a
# random-weight Llama-3.2-1B-shaped model. BINS: the names, run in turn ROUNDS times (interleaved,
# so that drifts of the card hit every binary alike); CTXS: the contexts. Then GPU parity
# (parity_variant.sh: with the patches it was built with) for each name in PARITY. Logs go to $OUT.
# A name may carry mk flags after a slash, commas for spaces: "new/--kernel,specialized" runs mk-new
# with `--kernel specialized` (its logs are named with the slash and commas as underscores). And after
# an @, environment settings, commas between them: "l2a@MK_L2_AHEAD=16,MK_L2_KEEP=1" runs mk-l2a with
# those two set (an experiment's knobs, read by the patched binary).
# Example: BINS="head new new/--weight-pipe,off" ROUNDS=2 PARITY=new bash scripts/device/ab_decode.sh
# SHAPE: the bench shape (default llama-3.2-1b; bench/shapes.py names the others).
set -uo pipefail
bash scripts/device/devbin_unpack.sh
SHAPE=${SHAPE:-llama-3.2-1b}
M=/tmp/mk-bench-$SHAPE
[ -d $M ] || python3 bench/make_model.py --shape $SHAPE --out $M > /dev/null
nvidia-smi --query-gpu=name --format=csv,noheader
for r in $(seq ${ROUNDS:-2}); do for b in $BINS; do
  run=${b%%@*} vars=$([ "$run" != "$b" ] && echo "${b#*@}" | tr ',' ' ')
  bin=${run%%/*} flags=$([ "$bin" != "$run" ] && echo "${run#*/}" | tr ',' ' ') log=$(echo "$b" | tr '/,@=' '____')
  env $vars .devbin/mk-$bin bench --model $M --contexts ${CTXS:-32,1024} --no-baseline --prompt 16 --out-dir /tmp/r-$SHAPE-$log-$r \
    $flags > $OUT/bench-$SHAPE-$log-$r.log 2>&1
  echo "$SHAPE $b round $r: $(grep -E '^bench: .*ms/token' $OUT/bench-$SHAPE-$log-$r.log | tr '\n' ' ' | head -c 900)"
done; done
for n in ${PARITY:-}; do bash scripts/device/parity_variant.sh $n; done
