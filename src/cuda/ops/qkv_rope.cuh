// QkvRope on the GPU: the tile's head rows of the fused Q/K/V matrix (one warp per row), then per
// (row, head) bias, Qwen3 q/k RMSNorm and RoPE in shared memory; Q to the arena, K/V to the cache.
#pragma once

#include "cuda/ops/matvec.cuh"

namespace mk::cuda {

// y[m][i] = W[row0 + i] . x[m] + b for the tile's rows, kRows rows per warp at a time.
template <int MC>
__device__ void qkv_rows(const __nv_bfloat16* W, const __nv_bfloat16* bias, size_t row0, uint32_t rows,
                         const float* x, uint32_t H, uint32_t mc, float* y) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (uint32_t i0 = warp * kRows; i0 < rows; i0 += kWarps * kRows) {
    const __nv_bfloat16* w[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) w[r] = W + (row0 + (i0 + r < rows ? i0 + r : i0)) * H;
    float acc[kRows][MC];
    warp_dot_rows<kRows, MC>(w, kRows, x, H, mc, acc);
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (i0 + r >= rows) break;
      const float b = bias ? bf(bias[row0 + i0 + r]) : 0.0f;
      if (lane == 0)
#pragma unroll
        for (int m = 0; m < MC; ++m)
          if (m < int(mc)) y[m * rows + i0 + r] = acc[r][m] + b;
    }
  }
}

__device__ void run_qkv_rope(const Instruction& ins, const KernelParams& p, float* smem) {
  const QkvRopeArgs& a = ins.a.qkv;
  const ModelDims& d = p.dims;
  const uint32_t H = d.hidden, D = d.head_dim, Hq = d.n_heads, Hkv = d.n_kv_heads, M = d.n_tokens;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const uint32_t heads = ins.tile_end - ins.tile_begin, rows = heads * D;
  float* scratch = smem;
  float* x = smem + kSmemHead;
  const uint32_t fit = (p.smem_floats - kSmemHead) / (H + rows);
  const uint32_t chunk = fit < kMC ? fit : kMC;  // >= 1: checked on the host
  const __nv_bfloat16* W = weight(p, a.weight);
  const __nv_bfloat16* bias = weight(p, a.bias);
  const __nv_bfloat16* rope = weight(p, a.rope);
  for (uint32_t m0 = 0; m0 < M; m0 += chunk) {
    const uint32_t mc = M - m0 < chunk ? M - m0 : chunk;
    float* y = x + mc * H;  // [mc][rows]
    load_rows(p, x, p.arena + a.in + size_t(m0) * H, mc, H, a.norm, scratch);
    float* res;
    char* ring;
    const uint32_t stages = mc == 1 && p.stream_weights ? stream_plan(p, H, rows, 1, &res, &ring, smem) : 0;
    if (stages) {
      const __nv_bfloat16* mats[2] = {W, nullptr};
      y = res;  // the results stay where the stream wrote them
      stream_rows(mats, 1, ins.tile_begin * D, rows, H, x, y, ring, stages);
      for (uint32_t i = threadIdx.x; i < rows; i += kThreads)
        if (bias) y[i] += bf(bias[size_t(ins.tile_begin) * D + i]);
      __syncthreads();
    } else if (mc == 1)
      qkv_rows<1>(W, bias, size_t(ins.tile_begin) * D, rows, x, H, mc, y);
    else
      qkv_rows<kMC>(W, bias, size_t(ins.tile_begin) * D, rows, x, H, mc, y);
    __syncthreads();
    for (uint32_t t = warp; t < mc * heads; t += kWarps) {
      const uint32_t m = t / heads, u = ins.tile_begin + t % heads;
      float* v = y + m * rows + (t % heads) * D;
      const bool is_q = u < Hq, is_k = !is_q && u < Hq + Hkv;
      const __nv_bfloat16* nw = weight(p, is_q ? a.q_norm : is_k ? a.k_norm : kNone);
      if (nw) {
        float ss = 0;
        for (uint32_t i = lane; i < D; i += 32) ss += v[i] * v[i];
        const float inv = rsqrtf(warp_sum(ss) / D + d.qk_norm_eps);
        for (uint32_t i = lane; i < D; i += 32) v[i] = v[i] * inv * bf(nw[i]);
        __syncwarp();
      }
      const uint32_t pos = p.step.pos + m0 + m;
      if (rope && (is_q || is_k)) {
        const __nv_bfloat16* row = rope + size_t(pos) * D;
        for (uint32_t i = lane; i < D / 2; i += 32) {
          const float c = bf(row[i]), s = bf(row[D / 2 + i]), x0 = v[i], x1 = v[i + D / 2];
          v[i] = x0 * c - x1 * s;
          v[i + D / 2] = x1 * c + x0 * s;
        }
        __syncwarp();
      }
      if (is_q) {
        float* dst = p.arena + a.q_out + (size_t(m0 + m) * Hq + u) * D;
        for (uint32_t i = lane; i < D; i += 32) dst[i] = v[i];
      } else {
        const uint32_t head = is_k ? u - Hq : u - Hq - Hkv;
        __nv_bfloat16* dst = p.kv + (((size_t(ins.layer) * 2 + (is_k ? 0 : 1)) * Hkv + head) * d.max_ctx + pos) * D;
        for (uint32_t i = lane; i < D; i += 32) dst[i] = __float2bfloat16(v[i]);
      }
    }
    __syncthreads();
  }
}

}  // namespace mk::cuda
