#!/usr/bin/env bash
# Runs on the lent GPU machine: decode speed with the KV splits forced (--kv-splits N for each N of
# SPLITS) at short contexts, to place the one-split threshold (kSingleSplitKeys in the scheduler).
# BIN: a packed build of .devbin (build_variants.sh); logs to $OUT/kvsplits-*.log, a summary to stdout.
#   BIN=at SPLITS="1 4 8 16" CTXS=64,128,192,256 bash scripts/device/kv_split_sweep.sh
set -uo pipefail
bash scripts/device/devbin_unpack.sh
SHAPE=${SHAPE:-llama-3.2-1b} BIN=${BIN:?a .devbin variant} M=/tmp/mk-bench-$SHAPE
[ -d $M ] || python3 bench/make_model.py --shape $SHAPE --out $M > /dev/null
for n in ${SPLITS:-1 4 8 16}; do
  log=$OUT/kvsplits-$BIN-$n.log
  .devbin/mk-$BIN bench --model $M --contexts ${CTXS:-64,128,192,256} --no-baseline --prompt 16 --kernel generic \
    --kv-splits $n --out-dir /tmp/kvs-$BIN-$n > $log 2>&1
  echo "splits $n: $(grep -E '^bench: .*ms/token' $log | tr '\n' ' ' | head -c 900)"
done
