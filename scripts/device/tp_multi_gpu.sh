#!/usr/bin/env bash
# Runs on a lent multi-GPU machine (nvidia-h100-x2 / x4 / x8, nvidia-h200-x2 ...): issue 9's checks
# and benchmarks, one phase a call (a call has 10 minutes). Logs and results go to $OUT, packed.
#   PHASE=tests   the tensor-parallel GPU tests: ranks sharing one GPU and across GPUs, the three
#                 --tp-comm paths, the Llama-3.2-1B shape at TP 2 / 4 / 8 over 128 steps (default)
#   PHASE=bench   mk bench --tp N for SHAPE (default llama-3.1-8b) at every N in TPS (default 1 2 4 8,
#                 those the host has GPUs for): each run measures the in-kernel all-reduce, then NCCL
#                 between launches (rows _tp<N> and _tp<N>_nccl); COMMS="launches" adds runs of the
#                 exchange kernel between launches. The PyTorch baseline with TP 1 only (it runs the
#                 whole model on one GPU)
#   PHASE=trace   mk trace --tp TP (default 8) of SHAPE's decode step at context 32: rank 0's timeline,
#                 how long its first AllReduce waits for the other ranks (launch skew)
#   PHASE=make    only write SHAPE's random model to /tmp/mk-bench-SHAPE (70B: minutes, 140 GB of disk),
#                 so that the bench calls after it, on the same warm machine, only load it
# MK_BIN: the mk binary (default: .devbin/mk-tp, built here with VARIANTS=tp build_variants.sh).
set -uo pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
export MK_REPORT=$OUT/tp_report.txt  # test_gpu_parity.py's cosine / top-1 lines
bash scripts/device/devbin_unpack.sh
export MK_BIN=${MK_BIN:-$PWD/.devbin/mk-tp}
GPUS=$(python3 -c "import torch; print(torch.cuda.device_count())")
nvidia-smi --query-gpu=index,name,memory.total --format=csv | tee $OUT/gpus.txt
nvidia-smi topo -m > $OUT/topo.txt 2>&1
# --tp-comm nccl loads libnccl.so.2 at run time: PyTorch's where the loader does not find one.
python3 -c "import ctypes; ctypes.CDLL('libnccl.so.2')" 2>/dev/null ||
  export MK_NCCL_LIBRARY=$(python3 -c "import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], 'lib', 'libnccl.so.2'))")
echo "GPUs: $GPUS; mk: $($MK_BIN --version); NCCL: ${MK_NCCL_LIBRARY:-libnccl.so.2}"
SHAPE=${SHAPE:-llama-3.1-8b}
case ${PHASE:-tests} in
tests)
  python3 -m pytest -q tests/py/test_gpu_parity.py -k tensor_parallel -rs 2>&1 | tee $OUT/tp_tests.log | tail -25 ;;
trace)
  [ -f /tmp/mk-bench-$SHAPE/config.json ] || python3 bench/make_model.py --shape $SHAPE --out /tmp/mk-bench-$SHAPE
  for comm in kernel nccl; do
    $MK_BIN trace --model /tmp/mk-bench-$SHAPE --tp ${TP:-8} --tp-comm $comm --context 32 --out $OUT/trace-$comm.json \
      --svg $OUT/trace-$comm.svg 2>&1 | tail -25
  done ;;
make)
  [ -f /tmp/mk-bench-$SHAPE/config.json ] || python3 bench/make_model.py --shape $SHAPE --out /tmp/mk-bench-$SHAPE
  df -h /tmp | tail -1 ;;
bench)
  mkdir -p $OUT/results
  for tp in ${TPS:-1 2 4 8}; do
    [ "$tp" -le "$GPUS" ] || { echo "tp $tp: only $GPUS GPUs"; continue; }
    for comm in kernel ${COMMS:-}; do
      [ "$tp" = 1 ] && [ $comm != kernel ] && continue
      extra=$([ "$tp" = 1 ] || echo --no-baseline)
      echo "== $SHAPE tp $tp $comm"
      timeout ${RUN_TIMEOUT:-540} $MK_BIN bench --shape $SHAPE --tp $tp --tp-comm $comm --contexts ${CTXS:-32,1024} \
        --steps ${STEPS:-64} --out-dir $OUT/results $extra > $OUT/results/bench-$SHAPE-tp$tp-$comm.log 2>&1
      echo "rc=$?"; grep -E "^\| |bench: .*ms/token|error" $OUT/results/bench-$SHAPE-tp$tp-$comm.log | tail -8
    done
  done ;;
esac
# One archive: the device tool brings back only a few files from $OUT.
tar czf $OUT/tp_$(date +%H%M%S).tgz -C $OUT $(cd $OUT && ls | grep -v '\.tgz$') 2>/dev/null
