// The tensor-parallel instructions on the CPU: AllReduce adds every rank's partial into this rank's
// residual stream, ArgmaxRanks picks the next token among every rank's best. Peers' buffers are read
// at this rank's offsets (every rank's graph has the same buffers); the executor has already waited
// for the producers on every rank (kFlagWaitAllRanks). Without peers (ranks that meet between
// launches) the exchange before the launch has put the sum, or every rank's best, in this arena.
#include <bit>
#include <cstdint>

#include "cpu/ops/context.h"

namespace mk::cpu {

void run_all_reduce(const Instruction& ins, const OpContext& ctx) {
  const AllReduceArgs& a = ins.a.all_reduce;
  for (uint32_t m = 0; m < a.rows; ++m)
    for (uint32_t c = ins.tile_begin; c < ins.tile_end; ++c) {
      const size_t i = size_t(m) * a.cols + c;
      // Ranks in order on every rank, so that every copy of the stream stays identical.
      float sum = 0.0f;
      if (!ctx.rank_arenas) sum = ctx.arena[a.partial + i];
      for (uint32_t r = 0; ctx.rank_arenas && r < ctx.tp_size; ++r) sum += ctx.rank_arenas[r][a.partial + i];
      ctx.arena[a.out + i] += sum;
    }
}

void run_argmax_ranks(const Instruction& ins, const OpContext& ctx) {
  const ArgmaxRanksArgs& a = ins.a.argmax_ranks;
  for (uint32_t m = 0; m < a.rows; ++m) {
    float best = 0.0f;
    uint32_t best_index = 0;
    for (uint32_t r = 0; r < a.ranks; ++r) {
      const float* b = (ctx.rank_arenas ? ctx.rank_arenas[r] : ctx.arena) + a.best + (size_t(r) * a.rows + m) * 2;
      // Ranks hold rising slices of the vocabulary: a later rank wins only with a larger value, so
      // the first maximum wins as in one rank's argmax.
      if (r == 0 || b[0] > best) best = b[0], best_index = std::bit_cast<uint32_t>(b[1]);
    }
    ctx.io[a.out_token + m] = static_cast<int32_t>(best_index);
  }
}

}  // namespace mk::cpu
