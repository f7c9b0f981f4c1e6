#!/usr/bin/env bash
# Runs on the lent GPU machine (carry ".devbin"), one call of ~5 minutes: where the step's time goes
# besides the handoffs, and decode head blocks by default or not.
#   1. Decode traces at context 32 with the phases stamped, with waits (mk-ph, PHASES=1) and without
#      (mk-nwp, PHASES=1 NOWAITS=1): what a stage does between its pages when nothing waits.
#   2. A 512-token prefill trace of Qwen2.5-1.5B (mk-head; PREFILL_SHAPES="qwen2.5-1.5b llama-3.2-1b"
#      for Llama's beside it): per op, where Qwen's prefill is 1.28x PyTorch's graph, Llama's 0.98x.
#   3. Interleaved A/B of decode head blocks (mk-head): Llama 1 / 2 (AB_LLAMA=0: not), Qwen 1 / 3.
#   4. Decode with the weight pipe's ring capped at 6 and 9 pages against all that fit (12), after
#      GPU parity of the pipe's modes and of rings of 2 and 3 pages (first).
# mk-head must have --pipe-pages (5f714de or later; .devbin's is b03825a).
# Traces go to $OUT/traces.tgz, the printed tables to $OUT/summary.txt.
set -uo pipefail
bash scripts/device/devbin_unpack.sh > /dev/null
{
  nvidia-smi --query-gpu=name --format=csv,noheader
  # The weight pipe's modes and rings of 2 and 3 pages against the CPU executor (new in 5f714de).
  K=weight_pipe PARITY_TIMEOUT=60 bash scripts/device/parity_variant.sh head
  for b in ph nwp; do
    MK_BIN=$PWD/.devbin/mk-$b CONTEXTS=32 PREFILL=0 timeout 90 bash scripts/device/trace_run.sh | sed "s/^/$b: /"
    mv $OUT/trace $OUT/trace-$b
  done
  for s in ${PREFILL_SHAPES:-qwen2.5-1.5b}; do
    MK_BIN=$PWD/.devbin/mk-head SHAPE=$s CONTEXTS=" " PREFILL=512 timeout 120 bash scripts/device/trace_run.sh | sed "s/^/$s: /"
    mv $OUT/trace $OUT/trace-prefill-$s
  done
  [ "${AB_LLAMA:-1}" = 1 ] && BINS="head head/--attn-head-blocks,2" CTXS=32,1024 ROUNDS=2 timeout 110 \
    bash scripts/device/ab_decode.sh | grep round
  SHAPE=qwen2.5-1.5b BINS="head head/--attn-head-blocks,3" CTXS=32,1024 ROUNDS=2 timeout 120 \
    bash scripts/device/ab_decode.sh | grep round
  # What the ring's depth is worth (H100, Llama: 12 pages fit): if 6 or 9 pages cost much, a deeper
  # ring (the input rows in bf16, 16 KB back) would pay.
  BINS="head head/--pipe-pages,6 head/--pipe-pages,9" CTXS=32 ROUNDS=2 timeout 100 \
    bash scripts/device/ab_decode.sh | grep round
} 2>&1 | grep -v "Writing model shards\|Loading weights" | tee $OUT/summary.txt
cd $OUT && tar czf traces.tgz trace-* && rm -rf trace-* && tar czf logs.tgz *.log && rm -f *.log
