// Row-wise ops of the CPU executor: Embed (token + learned position rows into the residual
// stream) and the standalone Norm (used when norms are not fused into the following matvec), which
// also adds a split projection's products to the residual stream.
#include <cstring>
#include <vector>

#include "cpu/ops/context.h"

namespace mk::cpu {

void run_embed(const Instruction& ins, const OpContext& ctx) {
  const EmbedArgs& a = ins.a.embed;
  const uint32_t H = ctx.dims->hidden;
  const float* table = ctx.weight(a.token_table);
  const float* pos_table = ctx.weight(a.pos_table);
  for (uint32_t m = ins.tile_begin; m < ins.tile_end; ++m) {  // a tile of tokens
    float* out = ctx.arena + a.out + size_t(m) * H;
    const int32_t token = ctx.io[a.tokens + m];  // validated by the engine before the run
    std::memcpy(out, table + size_t(token) * H, H * sizeof(float));
    if (pos_table) {
      const float* p = pos_table + size_t(ctx.step.pos + m) * H;
      for (uint32_t i = 0; i < H; ++i) out[i] += p[i];
    }
    for (uint32_t i = 0; i < H; ++i) out[i] = tag_output(ins, out[i]);
  }
}

void run_norm(const Instruction& ins, const OpContext& ctx) {
  const NormArgs& a = ins.a.norm;
  const uint32_t H = ctx.dims->hidden;
  const bool bf16 = ins.flags & kFlagBf16Out;
  thread_local std::vector<float> row;
  row.resize(H);
  for (uint32_t m = ins.tile_begin; m < ins.tile_end; ++m) {  // a tile of rows
    float* in = ctx.arena + a.in + size_t(m) * H;
    // A split projection's products (NormArgs::k_splits) join the residual first, in range order.
    for (uint32_t s = 0; a.k_splits > 1 && s < a.k_splits; ++s) {
      const float* part = ctx.arena + a.partial + (size_t(s) * a.rows + m) * H;
      for (uint32_t i = 0; i < H; ++i) in[i] += part[i];
    }
    float* out = bf16 ? row.data() : ctx.arena + a.out + size_t(m) * H;
    normalize(in, out, H, static_cast<NormKind>(ctx.dims->norm_kind),
              ctx.dims->norm_eps, ctx.weight(a.norm.weight), ctx.weight(a.norm.bias));
    if (bf16)
      for (uint32_t i = 0; i < H; ++i) store_act(ctx, a.out, size_t(m) * H + i, out[i], true);
  }
}

}  // namespace mk::cpu
