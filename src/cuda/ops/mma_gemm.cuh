// Tensor-core passes for prefill tiles: C[m][n] = x'[m] . W[row(n)] for up to kGemmM tokens and
// kGemmN weight rows, with bf16 mma.sync (m16n8k16, sm_80+) and fp32 accumulation.
//
// A prefill tile multiplies every prompt token by its weight rows, so the weights are reused
// kGemmM times from shared memory instead of being streamed once per token (the CUDA-core path
// reads them once per 8 tokens). Activations are fp32 in the arena; they are rounded to bf16 as
// they enter shared memory, as a bf16 framework's activations are. A fused RMSNorm costs nothing
// extra: its weight scales x as it is loaded, and 1/rms(x), accumulated from the same loads, scales
// the finished dot products (W . (x * g / rms) = (W . (x * g)) / rms).
//
// Pipeline: two stages of kGemmK columns. The weight rows of the next stage travel by cp.async
// and its activations sit in registers while the tensor cores work on the current stage.
#pragma once

#include "cuda/device_common.cuh"

namespace mk::cuda {

constexpr uint32_t kGemmM = 128;  // tokens per pass: 4 warps of 32 along M
constexpr uint32_t kGemmN = 64;   // weight rows per pass: 2 warps of 32 along N
constexpr uint32_t kGemmK = 64;   // columns per stage
// bf16 row stride in shared memory: 16 bytes of padding put the 8 rows that one ldmatrix reads in
// 8 different bank groups.
constexpr uint32_t kGemmLd = kGemmK + 8;
constexpr uint32_t kGemmStageElems = (kGemmM + kGemmN) * kGemmLd;
constexpr uint32_t kGemmWorkFloats = 2 * kGemmStageElems / 2 + kGemmM;  // two stages, then 1/rms per token
// Prefill tiles at least this tall (tokens) use the tensor cores; fewer would waste most of a pass.
constexpr uint32_t kGemmMinTokens = 16;

// When a tile can take the tensor-core path: the columns come in 16-byte pieces, and the fused norm
// (if any) is an RMSNorm (a LayerNorm's mean does not factor out of the dot product).
__device__ __forceinline__ bool gemm_fits(const KernelParams& p, uint32_t tokens, uint32_t K, InNorm norm) {
  return tokens >= kGemmMinTokens && K % 8 == 0 &&
         (norm.weight == kNone || p.dims.norm_kind == uint8_t(NormKind::Rms));
}

__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  // src-size 0 fills the 16 bytes with zeros: the columns past K of the last stage.
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0)
               : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// The same, each 8x8 matrix transposed: B fragments from a row-major [k][n] tile (attention's V).
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

__device__ __forceinline__ void mma_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// One pass: tokens [0, mc) of X (row stride K floats, mc <= kGemmM) against weight rows
// row_ptr(0 .. nrows) (nrows <= kGemmN, each K bf16). Writes C[m * ldc + n] for m < mc, n < nrows,
// divided by rms(x[m]) when `g` (the RMSNorm weight) is given. `work`: kGemmWorkFloats of shared
// memory. Ends with a barrier: C is ready for every consumer thread.
template <class RowPtr>
__device__ __noinline__ void gemm_pass(const KernelParams& p, const float* X, uint32_t mc, uint32_t K, const __nv_bfloat16* g,
                          RowPtr row_ptr, uint32_t nrows, float* C, uint32_t ldc, float* work) {
  __nv_bfloat16* stage[2] = {reinterpret_cast<__nv_bfloat16*>(work),
                             reinterpret_cast<__nv_bfloat16*>(work) + kGemmStageElems};
  float* inv_rms = work + kGemmStageElems;  // after both stages (2 bf16 = 1 float each)
  const uint32_t t = threadIdx.x, warp = t / 32, lane = t % 32;
  const uint32_t wm = warp % 4, wn = warp / 4;
  const uint32_t chunks = (K + kGemmK - 1) / kGemmK;

  // Activations: thread t loads columns 4 (t % 16) .. + 3 of rows t / 16 + 16 j of a stage.
  constexpr int kXLoads = kGemmM * kGemmK / 4 / kThreads;  // 8 float4 per thread
  const uint32_t xc = (t % 16) * 4, xr = t / 16;
  float4 xv[kXLoads];
  float gv[4];
  float ss[kXLoads];
#pragma unroll
  for (int j = 0; j < kXLoads; ++j) ss[j] = 0;
  auto load_x = [&](uint32_t c) {
    const uint32_t col = c * kGemmK + xc;
#pragma unroll
    for (int j = 0; j < kXLoads; ++j) {
      const uint32_t row = xr + 16 * j;
      xv[j] = row < mc && col < K ? __ldcg(reinterpret_cast<const float4*>(X + size_t(row) * K + col))
                                  : make_float4(0, 0, 0, 0);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) gv[i] = g && col < K ? bf(g[col + i]) : 1.0f;
  };
  auto store_x = [&](__nv_bfloat16* s) {
#pragma unroll
    for (int j = 0; j < kXLoads; ++j) {
      const float4 v = xv[j];
      ss[j] += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
      *reinterpret_cast<uint2*>(s + (xr + 16 * j) * kGemmLd + xc) =
          make_uint2(pack_bf16(v.x * gv[0], v.y * gv[1]), pack_bf16(v.z * gv[2], v.w * gv[3]));
    }
  };
  // Weights: 16-byte pieces, kGemmN rows x 8 pieces, two per thread, after the activations' rows.
  auto load_w = [&](uint32_t c, __nv_bfloat16* s) {
#pragma unroll
    for (uint32_t j = 0; j < kGemmN * kGemmK / 8 / kThreads; ++j) {
      const uint32_t i = t + j * kThreads, n = i / 8, col = c * kGemmK + (i % 8) * 8;
      const bool valid = col < K;
      cp_async16(s + (kGemmM + n) * kGemmLd + (i % 8) * 8, row_ptr(n < nrows ? n : 0) + (valid ? col : 0), valid);
    }
    asm volatile("cp.async.commit_group;" ::: "memory");
  };

  float acc[2][4][4];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0;

  load_w(0, stage[0]);
  load_x(0);
  store_x(stage[0]);
  for (uint32_t c = 0; c < chunks; ++c) {
    __nv_bfloat16* cur = stage[c & 1];
    __nv_bfloat16* next = stage[(c & 1) ^ 1];
    const bool more = c + 1 < chunks;
    if (more) {
      load_w(c + 1, next);
      load_x(c + 1);  // in flight while the tensor cores work
      asm volatile("cp.async.wait_group 1;" ::: "memory");
    } else {
      asm volatile("cp.async.wait_group 0;" ::: "memory");
    }
    sync_consumers();  // this stage's weights (every thread's copies) and activations are in place
#pragma unroll
    for (uint32_t kk = 0; kk < kGemmK; kk += 16) {
      uint32_t a[2][4], b[4][2];
#pragma unroll
      for (int i = 0; i < 2; ++i)
        ldmatrix_x4(a[i], cur + (wm * 32 + i * 16 + lane % 16) * kGemmLd + kk + (lane / 16) * 8);
#pragma unroll
      for (int jp = 0; jp < 2; ++jp) {
        uint32_t r[4];
        ldmatrix_x4(r, cur + (kGemmM + wn * 32 + jp * 16 + (lane / 16) * 8 + lane % 8) * kGemmLd + kk +
                           ((lane / 8) % 2) * 8);
        b[2 * jp][0] = r[0], b[2 * jp][1] = r[1], b[2 * jp + 1][0] = r[2], b[2 * jp + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) mma_bf16(acc[i][j], a[i], b[j][0], b[j][1]);
    }
    if (more) store_x(next);
    sync_consumers();  // `cur` is free for stage c + 2; `next` holds its activations
  }

  if (g) {
#pragma unroll
    for (int j = 0; j < kXLoads; ++j) {
      float v = ss[j];
#pragma unroll
      for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);  // the 16 threads of a row
      if (t % 16 == 0) inv_rms[xr + 16 * j] = rsqrtf(v / K + p.dims.norm_eps);
    }
    sync_consumers();
  }
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint32_t m = wm * 32 + i * 16 + lane / 4 + h * 8;
      if (m >= mc) continue;
      const float scale = g ? inv_rms[m] : 1.0f;
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const uint32_t n = wn * 32 + j * 8 + (lane % 4) * 2 + e;
          if (n < nrows) C[m * ldc + n] = acc[i][j][2 * h + e] * scale;
        }
    }
  sync_consumers();
}

}  // namespace mk::cuda
