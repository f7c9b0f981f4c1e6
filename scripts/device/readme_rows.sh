#!/usr/bin/env bash
# Runs on the lent GPU machine (carry ".devbin"): the README's performance rows for this card, by
# .devbin/mk-${BIN:-head}: `mk bench` with the PyTorch baseline on Llama-3.2-1B (contexts 32, 1024,
# 4096) and Qwen2.5-1.5B (32, 1024), GPT-2 without it. Result JSON/md go into $OUT/results.tgz, the
# logs beside it, and the README's rows printed (bench/readme_table.py); ~4-5 minutes on an H100
# (the Qwen model's random weights are written first).
# ROWS: other "shape:contexts" pairs, e.g. ROWS="llama-3.2-3b:32,1024" (its 6.4 GB written first).
set -uo pipefail
bash scripts/device/devbin_unpack.sh > /dev/null
mk=.devbin/mk-${BIN:-head} res=/tmp/readme-rows
mkdir -p $res
nvidia-smi --query-gpu=name --format=csv,noheader
for s in ${ROWS:-llama-3.2-1b:32,1024,4096 qwen2.5-1.5b:32,1024 gpt2:32}; do
  shape=${s%%:*}
  timeout ${BENCH_TIMEOUT:-250} $mk bench --shape $shape --contexts ${s#*:} $([ $shape = gpt2 ] && echo --no-baseline) \
    --out-dir $res > $OUT/bench-$shape.log 2>&1
  grep -E "^\| |TTFT|^Device" $OUT/bench-$shape.log
done
python3 bench/readme_table.py $res/*.json  # the rows as the README writes them
tar czf $OUT/results.tgz -C $res .
