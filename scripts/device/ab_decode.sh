# A/B decode: binaries named in BINS (.devbin/mk-<name>), ROUNDS rounds interleaved; then parity for PARITY.
set -uo pipefail
M=/tmp/mk-bench-llama-3.2-1b
[ -d $M ] || python3 bench/make_model.py --shape llama-3.2-1b --out $M > /dev/null
nvidia-smi --query-gpu=name --format=csv,noheader
for r in $(seq ${ROUNDS:-2}); do for b in $BINS; do
  .devbin/mk-$b bench --model $M --contexts ${CTXS:-32,1024} --no-baseline --prompt 16 --out-dir /tmp/r-$b-$r > $OUT/bench-$b-$r.log 2>&1
  echo "$b round $r: $(grep -E '^bench: .*ms/token' $OUT/bench-$b-$r.log | tr '\n' ' ' | head -c 400)"
done; done
for b in ${PARITY:-}; do
  MK_BIN=$PWD/.devbin/mk-$b timeout 250 python3 -m pytest -q -x tests/py/test_gpu_parity.py tests/py/test_greedy_loop.py > $OUT/parity-$b.log 2>&1
  echo "parity $b: $(tail -1 $OUT/parity-$b.log)"
done
