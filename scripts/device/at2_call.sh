#!/usr/bin/env bash
# Runs on the lent GPU machine (carry ".devbin"): session 26's next call for issue 6, in one go and
# under 9 minutes. GPU parity of at2 (attention's reduce in one round trip, the first keys before q,
# the one-split threshold at 64 keys), its decode A/B against tp (cd34efd, the same tree without
# them), the threshold below 64, Qwen2.5-1.5B, and the Llama-3.2-1B-shape TP cases on one GPU.
# Summaries go to $OUT/summary.txt, every log into $OUT/logs.tgz (the device returns few files).
set -uo pipefail
O=$OUT; export OUT=/tmp/at2-call; mkdir -p $OUT
{
  PARITY_TIMEOUT=200 bash scripts/device/parity_variant.sh at2
  BINS="tp at2" CTXS=32,1024,4096 ROUNDS=2 timeout 170 bash scripts/device/ab_decode.sh
  grep -h "TTFT" $OUT/bench-llama-3.2-1b-*-1.log
  BIN=at2 SPLITS="1 16" CTXS=40,48,56,64 timeout 60 bash scripts/device/kv_split_sweep.sh
  SHAPE=qwen2.5-1.5b BINS="tp at2" CTXS=32,1024 ROUNDS=1 timeout 70 bash scripts/device/ab_decode.sh
  MK_BIN=$PWD/.devbin/mk-tp timeout 80 python3 -m pytest -q tests/py/test_gpu_parity.py -k "1b_shape_on_one_gpu" \
    > $OUT/tp_1b.log 2>&1; tail -1 $OUT/tp_1b.log
} 2>&1 | grep -v "Writing model shards" | tee $O/summary.txt
tar czf $O/logs.tgz -C $OUT .
