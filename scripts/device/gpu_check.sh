#!/usr/bin/env bash
# Runs on the lent GPU machine: GPU parity tests against HF transformers and the CPU executor, then
# compute-sanitizer (memcheck, racecheck, synccheck) on a tiny model. Logs go to $OUT.
# MK_BIN: the mk binary to test (default: this tree's build). MK_ARGS: mk flags for the smoke and
# sanitizer runs (e.g. --data-waits). SKIP_PARITY=1: only those. SAN_MODELS: the tiny models the
# sanitizer runs (default: qwen3 llama qwen2_wide qwen2_d128).
set -uo pipefail
bash scripts/device/devbin_unpack.sh  # .devbin's packed builds, should MK_BIN name one
export PYTHONUNBUFFERED=1 MK_BIN=${MK_BIN:-$PWD/build/src/cli/mk} MK_REPORT=$OUT/gpu_report.txt
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee $OUT/device.txt
SAN_MODELS=${SAN_MODELS:-qwen3 llama qwen2_wide qwen2_d128}
python3 - llama $SAN_MODELS <<'PY' 2>&1 | tail -3
import sys; sys.path.insert(0, "tests/py")
import tiny_models
for arch in set(sys.argv[1:]):
    tiny_models.save_model(arch, f"/tmp/tiny_{arch}")
PY
echo "== smoke"
$MK_BIN logits --model /tmp/tiny_llama --tokens 1,2,3,4,5 --device cuda --generate 8 ${MK_ARGS:-} 2>&1 | tail -3
$MK_BIN logits --model /tmp/tiny_llama --tokens 1,2,3,4,5 --device cpu --generate 8 2>&1 | tail -3
if [ -z "${SKIP_PARITY:-}" ]; then
echo "== parity"
python3 -m pytest -q tests/py/test_gpu_parity.py tests/py/test_greedy_loop.py tests/py/test_gemm_pass_gpu.py ${PYTEST_ARGS:-} 2>&1 | tee $OUT/gpu_parity.log | tail -15
fi
echo "== compute-sanitizer"
# Qwen3 keeps whole-head QKV tiles (its q/k norm), Llama splits heads into rotary-pair parts; both
# decode through the weight pipe and prefill 18 tokens on the tensor cores (16 tokens or more);
# qwen2_wide's groups of 6 query heads decode in 3 head blocks (decode_head_blocks) and prefill in 2;
# qwen2_d128's 128-wide heads prefill through attn_partial_mma<128>.
for model in $SAN_MODELS; do
  for tool in memcheck racecheck synccheck; do
    compute-sanitizer --tool $tool --error-exitcode 9 $MK_BIN logits --model /tmp/tiny_$model \
      --tokens $(seq -s, 1 20) --prefill 18 --device cuda --generate 4 ${MK_ARGS:-} > $OUT/sanitizer_${model}_$tool.log 2>&1
    echo "$model $tool rc=$? $(tail -1 $OUT/sanitizer_${model}_$tool.log)"
  done
done
# One archive instead of six logs: the device tool brings back only a few files from $OUT.
tar czf $OUT/sanitizer_logs.tgz -C $OUT $(cd $OUT && ls sanitizer_*.log) && rm -f $OUT/sanitizer_*.log
if [ -n "${BENCH_SHAPES:-}" ]; then
  for shape in $BENCH_SHAPES; do
    echo "== bench $shape"
    $MK_BIN bench --shape $shape --out-dir $OUT/results ${BENCH_ARGS:-} > $OUT/bench_$shape.log 2>&1; grep -v "Loading weights" $OUT/bench_$shape.log | tail -40
  done
fi
