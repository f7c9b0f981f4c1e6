// QkvRope on the CPU: a tile of heads, or parts of heads (whole rotary pairs), of the fused Q/K/V
// projection, with bias, Qwen3's per-head q/k RMSNorm (whole heads only) and RoPE applied in the
// tile; K and V rows go straight into the KV cache.
#include "cpu/ops/context.h"
#include "model/tensor_source.h"

namespace mk::cpu {

void run_qkv_rope(const Instruction& ins, const OpContext& ctx) {
  const QkvRopeArgs& a = ins.a.qkv;
  const ModelDims& d = *ctx.dims;
  const uint32_t H = d.hidden, D = d.head_dim, Hq = d.n_heads, Hkv = d.n_kv_heads, M = d.n_tokens;
  thread_local std::vector<float> scratch, head(0);
  head.resize(D);
  const float* W = ctx.weight(a.weight);
  const float* bias = ctx.weight(a.bias);
  const float* rope = ctx.weight(a.rope);
  const uint32_t P = a.head_parts, pw = D / 2 / P;
  for (TokenSegments s(ins.tile_begin, ins.tile_end, (Hq + 2 * Hkv) * P, a.token_block, M); s.next();) {
    const float* x = input_rows(ctx, a.in, a.norm, s.m_begin, s.m_end - s.m_begin, H, ins.flags & kFlagBf16In, scratch);
    for (uint32_t u = s.u_begin; u < s.u_end; ++u) {
      const uint32_t hd = u / P, part = u % P;
      const bool is_q = hd < Hq, is_k = !is_q && hd < Hq + Hkv;
      const float* qk_norm = is_q ? ctx.weight(a.q_norm) : is_k ? ctx.weight(a.k_norm) : nullptr;
      for (uint32_t m = s.m_begin; m < s.m_end; ++m) {
        const float* xm = x + size_t(m - s.m_begin) * H;
        // head[] holds the whole head's rows in order; this unit fills its pairs' entries.
        for (uint32_t t = 0; t < 2 * pw; ++t) {
          const size_t row = qkv_unit_row(u, t, D, P);
          head[row - size_t(hd) * D] = dot(W + row * H, xm, H) + (bias ? bias[row] : 0.0f);
        }
        if (qk_norm) normalize(head.data(), head.data(), D, NormKind::Rms, d.qk_norm_eps, qk_norm, nullptr);
        const uint32_t pos = ctx.step.pos + m;
        if (rope && (is_q || is_k))
          apply_rope(head.data() + part * pw, rope + size_t(pos) * D + part * pw, D, pw);
        float* dst = is_q ? ctx.arena + a.q_out + (size_t(m) * Hq + hd) * D
                          : ctx.kv_row(ins.layer, is_k ? 0 : 1, is_k ? hd - Hq : hd - Hq - Hkv, pos);
        for (uint32_t t = 0; t < 2 * pw; ++t) {
          const uint32_t i = qkv_unit_row(u, t, D, P) - hd * D;
          dst[i] = is_q || !ctx.kv_bf16 ? head[i] : bf16_to_f32(f32_to_bf16(head[i]));
        }
      }
    }
  }
}

}  // namespace mk::cpu
