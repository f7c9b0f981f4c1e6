// The tensor-parallel instructions on the GPU: AllReduce adds every rank's partial into this
// rank's residual stream, ArgmaxRanks picks the next token among every rank's best. Peers' buffers
// are read at this rank's offsets (every rank's graph has the same buffers), at L2 or over the
// peer link (never L1: another SM or GPU wrote them during the launch). The wait for the producers
// on every rank (kFlagWaitAllRanks) is the megakernel's. Without peers (p.tp_size 1: ranks that
// meet between launches) the exchange before the launch has put the sum, or every rank's best, in
// this arena.
#pragma once

#include "cuda/ops/embed_norm.cuh"

namespace mk::cuda {

__device__ void run_all_reduce(const Instruction& ins, const KernelParams& p) {
  const AllReduceArgs& a = ins.a.all_reduce;
  const uint32_t cols = ins.tile_end - ins.tile_begin;
  for (uint32_t e = threadIdx.x; e < a.rows * cols; e += kThreads) {
    const size_t i = size_t(e / cols) * a.cols + ins.tile_begin + e % cols;
    // Ranks in order on every rank, so that every copy of the stream stays identical.
    float sum = p.tp_size > 1 ? 0.0f : __ldcg(p.arena + a.partial + i);
    for (uint32_t r = 0; p.tp_size > 1 && r < p.tp_size; ++r) sum += __ldcg(p.rank_arenas[r] + a.partial + i);
    p.arena[a.out + i] += sum;  // this tile is the element's only writer
  }
}

__device__ void run_argmax_ranks(const Instruction& ins, const KernelParams& p) {
  const ArgmaxRanksArgs& a = ins.a.argmax_ranks;
  if (threadIdx.x >= a.rows) return;
  const uint32_t m = threadIdx.x;
  float best = 0.0f;
  uint32_t best_index = 0;
  for (uint32_t r = 0; r < a.ranks; ++r) {
    const float* b = (p.tp_size > 1 ? p.rank_arenas[r] : p.arena) + a.best + (size_t(r) * a.rows + m) * 2;
    const float v = __ldcg(b);
    // Ranks hold rising slices of the vocabulary: a later one wins only with a larger value.
    if (r == 0 || v > best) best = v, best_index = __float_as_uint(__ldcg(b + 1));
  }
  emit_token(p, a.out_token, m, a.rows, static_cast<int32_t>(best_index));
}

}  // namespace mk::cuda
