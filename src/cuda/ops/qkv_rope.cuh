// QkvRope on the GPU: the tile's rows of the fused Q/K/V matrix (from the weight pipe in decode,
// on the tensor cores in prefill, else plain loads; one warp per row), then per (row, unit) bias, Qwen3 q/k RMSNorm and RoPE in
// shared memory; Q to the arena, K/V to the cache. A unit is a head, or a part of one holding whole
// rotary pairs (qkv_unit_row in isa.h), and its rows sit in y as [pw first-half rows][pw partners].
#pragma once

#include "cuda/ops/matvec.cuh"  // also brings the tensor-core passes (mma_gemm.cuh)

namespace mk::cuda {

// y[m][t] = W[row(t)] . x[m] + b for the tile's 2 * pw * units rows, kRows rows per warp at a time.
template <int MC>
__device__ void qkv_rows(const QkvRopeArgs& a, const KernelParams& p, uint32_t u0, uint32_t rows, const float* x,
                         uint32_t mc, float* y) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const uint32_t H = p.dims.hidden, D = p.dims.head_dim, P = a.head_parts, unit_rows = D / P;
  const __nv_bfloat16* W = weight(p, a.weight);
  const __nv_bfloat16* bias = weight(p, a.bias);
  auto row_of = [&](uint32_t t) { return qkv_unit_row(u0 + t / unit_rows, t % unit_rows, D, P); };
  for (uint32_t i0 = warp * kRows; i0 < rows; i0 += kWarps * kRows) {
    PagedRow w[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) w[r] = paged_row(W, row_of(i0 + r < rows ? i0 + r : i0), H);
    float acc[kRows][MC];
    warp_dot_rows<kRows, MC>(w, kRows, x, H, mc, acc);
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (i0 + r >= rows) break;
      const float b = bias ? bf(bias[row_of(i0 + r)]) : 0.0f;
      if (lane == 0)
#pragma unroll
        for (int m = 0; m < MC; ++m)
          if (m < int(mc)) y[m * rows + i0 + r] = acc[r][m] + b;
    }
  }
}

// One segment of a tile: units [s.u_begin, s.u_end) for tokens [s.m_begin, s.m_end).
template <bool kMma, class Spec>
__device__ void qkv_segment(const Instruction& ins, const KernelParams& p, float* smem, Pipe& pipe,
                            const TokenSegments& s) {
  const QkvRopeArgs& a = ins.a.qkv;
  const ModelDims& d = p.dims;
  // A specialized build fixes the head size (cuda/spec.h): RoPE's indexing then folds.
  const uint32_t H = d.hidden, D = Spec::kHeadDim ? Spec::kHeadDim : d.head_dim, Hq = d.n_heads, Hkv = d.n_kv_heads;
  const uint32_t u0 = s.u_begin;
  const uint32_t P = a.head_parts, pw = D / 2 / P, unit_rows = 2 * pw;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const uint32_t units = s.u_end - s.u_begin, rows = units * unit_rows;
  float* scratch = smem;
  float* x = smem + kSmemHead;
  const __nv_bfloat16* bias = weight(p, a.bias);
  const __nv_bfloat16* rope = weight(p, a.rope);
  PipeSpan span;
  const bool piped = !kMma && pipe_span(ins, p, &span);  // decode build only; then M == 1: one pass
  // Prefill on the tensor cores when y (kGemmM tokens by the tile's rows) fits beside their stages.
  const bool gemm = kMma && gemm_fits(ins, s.m_end - s.m_begin, H, a.norm) &&
                    p.smem_floats >= kSmemHead + gemm_work_floats(kGemmQkvN) + kGemmM * rows;
  const uint32_t fit = (p.smem_floats - kSmemHead) / (H + rows);
  const uint32_t chunk = gemm ? kGemmM : fit < kMC ? fit : kMC;  // >= 1: checked on the host
  auto row_of = [&](uint32_t t) { return qkv_unit_row(u0 + t / unit_rows, t % unit_rows, D, P); };
  const bool qk_norm = a.q_norm != kNone || a.k_norm != kNone;
  // The tensor cores' products come without the bias: the RoPE loop adds it (before RoPE), or,
  // where q and k are normalized first, a loop of its own.
  const __nv_bfloat16* late_bias = gemm && !qk_norm ? bias : nullptr;
  for (uint32_t m0 = s.m_begin; m0 < s.m_end; m0 += chunk) {
    const uint32_t mc = s.m_end - m0 < chunk ? s.m_end - m0 : chunk;
    float* y = gemm ? x + gemm_work_floats(kGemmQkvN) : x + mc * H;  // [mc][rows]
    if (!gemm && !piped)
      load_act_rows(p, x, a.in, m0, mc, H, a.norm, kMma && (ins.flags & kFlagBf16In), scratch, input_tag(ins));
    if (gemm) {
      const __nv_bfloat16* W = weight(p, a.weight);
      for (uint32_t n0 = 0; n0 < rows; n0 += kGemmQkvN) {
        const uint32_t nr = rows - n0 < kGemmQkvN ? rows - n0 : kGemmQkvN;
        // The TMA form takes rows by groups of 8: a unit's rows (two runs of 8 rotary rows, or a
        // whole head of D) must make whole groups.
        gemm_pass<kGemmQkvN>(bf16_act(p, a.in) + size_t(m0) * H, H, D % 8 == 0 ? act_map(p, a.in) : nullptr, m0, 0, mc, H,
                             [&](uint32_t n) { return paged_row(W, row_of(n0 + n), H); }, nr, y + n0, rows, x,
                             pipe.full);
      }
      trace_phase(kPhaseWeights);
      if (bias && qk_norm)
        for (uint32_t e = threadIdx.x; e < mc * rows; e += kThreads) y[e] += bf(bias[row_of(e % rows)]);
    } else if (piped) {
      // Group g holds 8 pairs: part 0 the first-half rows, part 1 their partners.
      with_width<Spec>(H, [&](auto kK) {
        load_rows<kK(), true>(p, x, p.arena + a.in + size_t(m0) * H, mc, H, a.norm, scratch, input_tag(ins));
        trace_phase(kPhaseInput);
        const RedSpace red = pipe_red_space(smem, p, kSmemHead + H + rows);
        pipe_rows<kK()>(pipe, span, x, red.at, red.floats, [&](uint32_t g, uint32_t r, float first, float second) {
          const uint32_t t = g / (pw / kPageRows) * unit_rows + g % (pw / kPageRows) * kPageRows + r;
          const uint32_t u = u0 + t / unit_rows;
          y[t] = first + (bias ? bf(bias[qkv_unit_row(u, t % unit_rows, D, P)]) : 0.0f);
          y[t + pw] = second + (bias ? bf(bias[qkv_unit_row(u, t % unit_rows + pw, D, P)]) : 0.0f);
        });
        trace_phase(kPhaseWeights);
      });
    } else if (mc == 1) {
      qkv_rows<1>(a, p, u0, rows, x, mc, y);
    } else {
      qkv_rows<kMC>(a, p, u0, rows, x, mc, y);
    }
    sync_consumers();
    if (qk_norm) {
      // Qwen3's per-head RMSNorm of q and k spans the head (P == 1, the graph builder's rule): a
      // warp per (row, head) normalizes it in place before RoPE.
      for (uint32_t it = warp; it < mc * units; it += kWarps) {
        const uint32_t hd = u0 + it % units;
        const __nv_bfloat16* nw = weight(p, hd < Hq ? a.q_norm : hd < Hq + Hkv ? a.k_norm : kNone);
        if (!nw) continue;  // V heads; warp-uniform
        float* v = y + (it / units) * rows + (it % units) * unit_rows;
        float ss = 0;
        for (uint32_t i = lane; i < D; i += 32) ss += v[i] * v[i];
        const float inv = rsqrtf(warp_sum(ss) / D + d.qk_norm_eps);
        for (uint32_t i = lane; i < D; i += 32) v[i] = v[i] * inv * bf(nw[i]);
      }
      sync_consumers();
    }
    // RoPE and the stores. Each thread keeps one (unit, rotary pair) and takes it for every
    // kThreads / (units * pw)-th row: what depends on the pair alone (its bias, its columns, where
    // its head's Q or K/V rows go, its RoPE column) is worked out once, where a thread per (row,
    // unit, pair) spent ~200 instructions a pair on divisions (the loop took 14.8 us of a 34 us
    // Qwen2.5-1.5B QKV tile, H100, session 32). kRopeRows rows at a time, their loads (the RoPE
    // table's: L2 round trips) before the first store.
    constexpr uint32_t kRopeRows = kMma ? 4 : 1;
    const uint32_t upw = units * pw, span = upw < kThreads ? upw : kThreads, groups = kThreads / span;
    const uint32_t pos0 = p.step.pos + m0;
    if (threadIdx.x < groups * span) {
      for (uint32_t j = threadIdx.x % span; j < upw; j += span) {
        const uint32_t uu = j / pw, i = j % pw, u = u0 + uu, hd = u / P;
        const bool is_q = hd < Hq, is_k = !is_q && hd < Hq + Hkv, rotate = rope && (is_q || is_k);
        const uint32_t row0 = qkv_unit_row(u, i, D, P), row1 = qkv_unit_row(u, i + pw, D, P);
        const float b0 = late_bias ? bf(late_bias[row0]) : 0.0f, b1 = late_bias ? bf(late_bias[row1]) : 0.0f;
        const uint32_t c0 = row0 - hd * D, c1 = row1 - hd * D;
        const float* v = y + uu * unit_rows + i;
        const __nv_bfloat16* rope_col = rope ? rope + (u % P) * pw + i : nullptr;  // + a position's row
        // Row m's destination: Q in the arena (rows of Hq heads), K and V in the layer's cache.
        float* q_dst = is_q ? p.arena + a.q_out + (size_t(m0) * Hq + hd) * D : nullptr;
        __nv_bfloat16* kv_dst = nullptr;
        if (!is_q) {
          const uint32_t head = is_k ? hd - Hq : hd - Hq - Hkv;
          kv_dst = p.kv + (((size_t(ins.layer) * 2 + (is_k ? 0 : 1)) * Hkv + head) * d.max_ctx + pos0) * D;
        }
        for (uint32_t m = threadIdx.x / span; m < mc; m += kRopeRows * groups) {
          float x0[kRopeRows], x1[kRopeRows], cs[kRopeRows], sn[kRopeRows];
#pragma unroll
          for (uint32_t r = 0; r < kRopeRows; ++r) {
            const uint32_t mr = m + r * groups < mc ? m + r * groups : m;
            x0[r] = v[mr * rows] + b0, x1[r] = v[mr * rows + pw] + b1;
            cs[r] = 1.0f, sn[r] = 0.0f;
            if (rotate) cs[r] = bf(rope_col[size_t(pos0 + mr) * D]), sn[r] = bf(rope_col[size_t(pos0 + mr) * D + D / 2]);
          }
#pragma unroll
          for (uint32_t r = 0; r < kRopeRows; ++r) {
            const uint32_t mr = m + r * groups;
            if (mr >= mc) break;
            // V and RoPE-less models keep their values (a select: x * 1 - inf * 0 would be NaN).
            const float r0 = rotate ? x0[r] * cs[r] - x1[r] * sn[r] : x0[r];
            const float r1 = rotate ? x1[r] * cs[r] + x0[r] * sn[r] : x1[r];
            if (is_q) {
              q_dst[size_t(mr) * Hq * D + c0] = r0, q_dst[size_t(mr) * Hq * D + c1] = r1;
            } else {
              kv_dst[size_t(mr) * D + c0] = __float2bfloat16(r0), kv_dst[size_t(mr) * D + c1] = __float2bfloat16(r1);
            }
          }
        }
      }
    }
    sync_consumers();
  }
}

template <bool kMma, class Spec>
__device__ void run_qkv_rope(const Instruction& ins, const KernelParams& p, float* smem, Pipe& pipe) {
  const QkvRopeArgs& a = ins.a.qkv;
  const ModelDims& d = p.dims;
  const uint32_t units = (d.n_heads + 2 * d.n_kv_heads) * a.head_parts;
  for_each_token_segment<kMma>(TokenSegments(ins.tile_begin, ins.tile_end, units, a.token_block, d.n_tokens),
                               [&](const TokenSegments& s) { qkv_segment<kMma, Spec>(ins, p, smem, pipe, s); });
}

}  // namespace mk::cuda
