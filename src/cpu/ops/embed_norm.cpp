// Row-wise ops of the CPU executor: Embed (token + learned position rows into the residual
// stream) and the standalone Norm (used when norms are not fused into the following matvec).
#include <cstring>

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
  }
}

void run_norm(const Instruction& ins, const OpContext& ctx) {
  const NormArgs& a = ins.a.norm;
  const uint32_t H = ctx.dims->hidden;
  for (uint32_t m = 0; m < ctx.dims->n_tokens; ++m)
    normalize(ctx.arena + a.in + size_t(m) * H, ctx.arena + a.out + size_t(m) * H, H,
              static_cast<NormKind>(ctx.dims->norm_kind), ctx.dims->norm_eps, ctx.weight(a.norm.weight),
              ctx.weight(a.norm.bias));
}

}  // namespace mk::cpu
