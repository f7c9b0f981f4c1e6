// QkvRope on the CPU: a tile of whole heads of the fused Q/K/V projection, with bias, Qwen3's
// per-head q/k RMSNorm and RoPE applied in the tile; K and V rows go straight into the KV cache.
#include "cpu/ops/context.h"
#include "model/tensor_source.h"

namespace mk::cpu {

void run_qkv_rope(const Instruction& ins, const OpContext& ctx) {
  const QkvRopeArgs& a = ins.a.qkv;
  const ModelDims& d = *ctx.dims;
  const uint32_t H = d.hidden, D = d.head_dim, Hq = d.n_heads, Hkv = d.n_kv_heads, M = d.n_tokens;
  thread_local std::vector<float> scratch, head(0);
  head.resize(D);
  const float* x = input_rows(ctx, a.in, a.norm, 0, M, H, scratch);
  const float* W = ctx.weight(a.weight);
  const float* bias = ctx.weight(a.bias);
  const float* rope = ctx.weight(a.rope);
  for (uint32_t u = ins.tile_begin; u < ins.tile_end; ++u) {
    const bool is_q = u < Hq, is_k = !is_q && u < Hq + Hkv;
    const float* qk_norm = is_q ? ctx.weight(a.q_norm) : is_k ? ctx.weight(a.k_norm) : nullptr;
    for (uint32_t m = 0; m < M; ++m) {
      const float* xm = x + size_t(m) * H;
      for (uint32_t i = 0; i < D; ++i) {
        const size_t row = size_t(u) * D + i;
        head[i] = dot(W + row * H, xm, H) + (bias ? bias[row] : 0.0f);
      }
      if (qk_norm) normalize(head.data(), head.data(), D, NormKind::Rms, d.qk_norm_eps, qk_norm, nullptr);
      const uint32_t pos = ctx.step.pos + m;
      if (rope && (is_q || is_k)) apply_rope(head.data(), rope + size_t(pos) * D, D);
      float* dst = is_q ? ctx.arena + a.q_out + (size_t(m) * Hq + u) * D
                        : ctx.kv_row(ins.layer, is_k ? 0 : 1, is_k ? u - Hq : u - Hq - Hkv, pos);
      for (uint32_t i = 0; i < D; ++i)
        dst[i] = is_q || !ctx.kv_bf16 ? head[i] : bf16_to_f32(f32_to_bf16(head[i]));
    }
  }
}

}  // namespace mk::cpu
