// Split-KV attention on the CPU. AttnPartial: one (kv head, head block, split, block of rows) unit
// for the query heads of its head block (attn_unit), writing a normalized partial output and its
// log-sum-exp; AttnReduce merges splits.
#include <cmath>
#include <limits>

#include "cpu/ops/context.h"

namespace mk::cpu {

void run_attn_partial(const Instruction& ins, const OpContext& ctx) {
  const AttnPartialArgs& a = ins.a.attn;
  const ModelDims& d = *ctx.dims;
  const uint32_t D = d.head_dim, Hq = d.n_heads, M = d.n_tokens, S = a.num_splits;
  const uint32_t group = Hq / d.n_kv_heads;
  const uint32_t R = attn_block_rows(M, a.row_block);
  // The KV range every row of this run may see is [0, pos + M); each split takes an equal chunk.
  const uint32_t ctx_end = ctx.step.pos + M;
  const uint32_t chunk = (ctx_end + S - 1) / S;
  thread_local std::vector<float> scores, out_row;
  const bool bf16 = ins.flags & kFlagBf16Out;  // then o is summed in out_row and rounded once
  out_row.resize(D);
  for (uint32_t u = ins.tile_begin; u < ins.tile_end; ++u) {
    const AttnUnit unit = attn_unit(a, u, group, M);
    const uint32_t kvh = unit.kvh, s = unit.s;
    const uint32_t k0 = s * chunk, k1 = std::min(ctx_end, k0 + chunk);
    for (uint32_t m = unit.m0; m < std::min(M, unit.m0 + R); ++m) {
      const uint32_t p = ctx.step.pos + m;
      const uint32_t lo = std::max(k0, a.window && p + 1 > a.window ? p + 1 - a.window : 0u);
      const uint32_t hi = std::min(k1, p + 1);  // causal
      for (uint32_t g = unit.g0; g < unit.g1; ++g) {
        const uint32_t hq = kvh * group + g;
        const float* q = ctx.arena + a.q + (size_t(m) * Hq + hq) * D;
        const size_t o_index = ((size_t(s) * M + m) * Hq + hq) * D;
        float* o = bf16 ? out_row.data() : ctx.arena + a.part_o + o_index;
        float* lse = ctx.arena + a.part_lse + (size_t(s) * M + m) * Hq + hq;
        for (uint32_t i = 0; i < D; ++i) o[i] = 0;
        if (lo >= hi) {  // no key in this split: zeros (tagged, as every output of a tagged writer)
          *lse = -std::numeric_limits<float>::infinity();
          for (uint32_t i = 0; i < D; ++i) o[i] = tag_output(ins, 0.0f);
          if (bf16)
            for (uint32_t i = 0; i < D; ++i) store_act(ctx, a.part_o, o_index + i, 0.0f, true);
          continue;
        }
        scores.resize(hi - lo);
        float mx = -std::numeric_limits<float>::infinity();
        for (uint32_t k = lo; k < hi; ++k) {
          scores[k - lo] = dot(q, ctx.kv_row(ins.layer, 0, kvh, k), D) * d.attn_scale;
          mx = std::max(mx, scores[k - lo]);
        }
        float sum = 0;
        for (uint32_t k = lo; k < hi; ++k) {
          const float w = std::exp(scores[k - lo] - mx);
          sum += w;
          const float* v = ctx.kv_row(ins.layer, 1, kvh, k);
          for (uint32_t i = 0; i < D; ++i) o[i] += w * v[i];
        }
        for (uint32_t i = 0; i < D; ++i) o[i] = tag_output(ins, o[i] / sum);
        if (bf16)
          for (uint32_t i = 0; i < D; ++i) store_act(ctx, a.part_o, o_index + i, o[i], true);
        *lse = mx + std::log(sum);
      }
    }
  }
}

void run_attn_reduce(const Instruction& ins, const OpContext& ctx) {
  const AttnReduceArgs& a = ins.a.reduce;
  const ModelDims& d = *ctx.dims;
  const uint32_t D = d.head_dim, Hq = d.n_heads, M = d.n_tokens, S = a.num_splits;
  thread_local std::vector<float> out_row;
  const bool bf16 = ins.flags & kFlagBf16Out;  // then out is summed in out_row and rounded once
  out_row.resize(D);
  for (uint32_t h = ins.tile_begin; h < ins.tile_end; ++h) {
    for (uint32_t m = 0; m < M; ++m) {
      float mx = -std::numeric_limits<float>::infinity();
      for (uint32_t s = 0; s < S; ++s) mx = std::max(mx, ctx.arena[a.part_lse + (size_t(s) * M + m) * Hq + h]);
      const size_t out_index = (size_t(m) * Hq + h) * D;
      float* out = bf16 ? out_row.data() : ctx.arena + a.out + out_index;
      for (uint32_t i = 0; i < D; ++i) out[i] = 0;
      float total = 0;
      for (uint32_t s = 0; s < S; ++s) {
        const float lse = ctx.arena[a.part_lse + (size_t(s) * M + m) * Hq + h];
        if (lse == -std::numeric_limits<float>::infinity()) continue;
        const float w = std::exp(lse - mx);
        total += w;
        const float* o = ctx.arena + a.part_o + ((size_t(s) * M + m) * Hq + h) * D;
        for (uint32_t i = 0; i < D; ++i) out[i] += w * o[i];
      }
      for (uint32_t i = 0; i < D; ++i) out[i] = tag_output(ins, total > 0 ? out[i] / total : out[i]);
      if (bf16)
        for (uint32_t i = 0; i < D; ++i) store_act(ctx, a.out, out_index + i, out[i], true);
    }
  }
}

}  // namespace mk::cpu
