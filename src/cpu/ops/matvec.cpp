// The matvec family on the CPU: MatvecResidual (out += W.x + b), MatvecAct (act(Wg.x) * (Wu.x) or
// act(Wu.x + b)), LmHead (logits plus this tile's per-row maximum) and the Argmax that reduces them.
#include <bit>
#include <cstring>
#include <limits>

#include "cpu/ops/context.h"

namespace mk::cpu {

void run_matvec(const Instruction& ins, const OpContext& ctx) {
  const MatvecArgs& a = ins.a.mv;
  const Opcode op = static_cast<Opcode>(ins.opcode);
  thread_local std::vector<float> scratch;
  const float* W = ctx.weight(a.weight);
  const float* bias = ctx.weight(a.bias);
  const float* G = ctx.weight(a.gate);
  const float* gate_bias = ctx.weight(a.gate_bias);
  const Activation act = static_cast<Activation>(ctx.dims->activation);
  for (TokenSegments s(ins.tile_begin, ins.tile_end, a.out_dim, a.token_block, a.rows); s.next();) {
    const float* x = input_rows(ctx, a.in, a.norm, a.in_row0 + s.m_begin, s.m_end - s.m_begin, a.in_dim,
                                ins.flags & kFlagBf16In, scratch);
    // A split matvec's range of the input (k_range), its product stored apart: the Norm that
    // follows adds the ranges' products to the outputs (NormArgs).
    uint32_t k0, k1;
    k_range(a.in_dim, a.k_splits, s.k_split, &k0, &k1);
    const bool split = a.k_splits > 1;
    for (uint32_t m = s.m_begin; m < s.m_end; ++m) {
      const float* xm = x + size_t(m - s.m_begin) * a.in_dim;
      float* out = ctx.arena + (split ? a.partial + (size_t(s.k_split) * a.rows + m) * a.out_dim
                                      : a.out + size_t(m) * a.out_dim);
      float best = -std::numeric_limits<float>::infinity();
      uint32_t best_index = s.u_begin;
      for (uint32_t r = s.u_begin; r < s.u_end; ++r) {
        const float y = dot(W + size_t(r) * a.in_dim + k0, xm + k0, k1 - k0) + (bias && k0 == 0 ? bias[r] : 0.0f);
        switch (op) {
          case Opcode::MatvecResidual:
            if (ins.flags & kFlagStore || split)
              out[r] = y;  // a tensor-parallel partial (summed by AllReduce) or a range's product
            else
              out[r] = tag_output(ins, out[r] + y);
            break;
          case Opcode::MatvecAct:
            store_act(ctx, a.out, size_t(m) * a.out_dim + r,
                      tag_output(ins, G ? activate(dot(G + size_t(r) * a.in_dim, xm, a.in_dim) +
                                                        (gate_bias ? gate_bias[r] : 0.0f), act) * y
                                        : activate(y, act)),
                      ins.flags & kFlagBf16Out);
            break;
          default:  // LmHead: the first maximum wins ties, as torch.argmax does
            out[r] = y;
            if (y > best) best = y, best_index = r;
            break;
        }
      }
      if (op == Opcode::LmHead) {
        float* part = ctx.arena + a.partial + (size_t(ins.tile_index) * a.rows + m) * 2;
        part[0] = best;
        part[1] = std::bit_cast<float>(best_index);
      }
    }
  }
}

void run_argmax(const Instruction& ins, const OpContext& ctx) {
  const ArgmaxArgs& a = ins.a.argmax;
  for (uint32_t m = 0; m < a.rows; ++m) {
    float best = -std::numeric_limits<float>::infinity();
    uint32_t best_index = 0;
    for (uint32_t t = 0; t < a.num_partials; ++t) {
      const float* part = ctx.arena + a.partial + (size_t(t) * a.rows + m) * 2;
      const uint32_t index = std::bit_cast<uint32_t>(part[1]);
      // Tiles cover increasing rows, so a later tile only wins with a strictly larger value.
      if (part[0] > best || (t == 0)) best = part[0], best_index = index;
    }
    if (a.best == kNone) {
      ctx.io[a.out_token + m] = static_cast<int32_t>(best_index);
    } else {  // tensor parallelism: this rank's candidate, in the whole vocabulary's numbering
      ctx.arena[a.best + 2 * m] = best;
      ctx.arena[a.best + 2 * m + 1] = std::bit_cast<float>(best_index + a.index_offset);
    }
  }
}

}  // namespace mk::cpu
