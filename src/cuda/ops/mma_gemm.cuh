// Tensor-core passes for prefill tiles: C[m][n] = x'[m] . W[row(n)] for up to kGemmM tokens and
// kGemmN weight rows, with bf16 mma.sync (m16n8k16, sm_80+) and fp32 accumulation.
//
// A prefill tile multiplies every prompt token by its weight rows, so the weights are reused
// kGemmM times from shared memory instead of being streamed once per token (the CUDA-core path
// reads them once per 8 tokens). Activations are fp32 in the arena; they are rounded to bf16 as
// the A fragments are built from shared memory, as a bf16 framework's activations are. A fused
// RMSNorm costs nothing extra: its weight scales x as the fragments are built, and 1/rms(x),
// accumulated from the same values, scales the finished dot products
// (W . (x * g / rms) = (W . (x * g)) / rms).
//
// Pipeline: kGemmStages stages of kGemmK columns, activations (fp32) and weight rows (bf16) both by
// cp.async, so that two stages are in flight while the tensor cores work on a third. With one stage
// ahead, held in registers, a pass waited out an L2 round trip for every 64 columns (85 us for a
// 128 x 64 x 2048 gate/up pass on an H200).
#pragma once

#include "cuda/tensor_core.cuh"

namespace mk::cuda {

constexpr uint32_t kGemmM = 128;  // tokens per pass: 4 warps of 32 along M
constexpr uint32_t kGemmN = 64;   // weight rows per pass: 2 warps of 32 along N
constexpr uint32_t kGemmK = 64;   // columns per stage
constexpr uint32_t kGemmStages = 3;
static_assert(kGemmK == 64 && kGemmN % 8 == 0, "load_stage maps threads to 8 pieces of 16 bytes per row, 8 rows at a time");
// Row strides in shared memory. Weights (bf16): 16 bytes of padding put the 8 rows that one
// ldmatrix reads in 8 different bank groups. Activations (fp32): a stride of 8 (mod 32) words puts
// the 4 rows that a half-warp's float2 fragment loads touch in 4 different groups of 8 banks.
constexpr uint32_t kGemmLd = kGemmK + 8;
constexpr uint32_t kGemmXLd = kGemmK + 8;
// A stage: activations [kGemmM][kGemmXLd] fp32, weights [kGemmN][kGemmLd] bf16, norm weights [kGemmK] bf16.
constexpr uint32_t kGemmStageFloats = kGemmM * kGemmXLd + kGemmN * kGemmLd / 2 + kGemmK / 2;
constexpr uint32_t kGemmWorkFloats = kGemmStages * kGemmStageFloats + kGemmM;  // the stages, then 1/rms per token
// Prefill tiles at least this tall (tokens) use the tensor cores; fewer would waste most of a pass.
constexpr uint32_t kGemmMinTokens = 16;

// When a tile can take the tensor-core path: the columns come in 16-byte pieces, and the fused norm
// (if any) is an RMSNorm (a LayerNorm's mean does not factor out of the dot product).
__device__ __forceinline__ bool gemm_fits(const KernelParams& p, uint32_t tokens, uint32_t K, InNorm norm) {
  return tokens >= kGemmMinTokens && K % 8 == 0 &&
         (norm.weight == kNone || p.dims.norm_kind == uint8_t(NormKind::Rms));
}

// One pass: tokens [0, mc) of X (row stride K floats, mc <= kGemmM) against weight rows
// row_ptr(0 .. nrows) (PagedRows, nrows <= kGemmN, each K bf16). Writes C[m * ldc + n] for m < mc, n < nrows,
// divided by rms(x[m]) when `g` (the RMSNorm weight) is given. `work`: kGemmWorkFloats of shared
// memory. Ends with a barrier: C is ready for every consumer thread.
template <class RowPtr>
__device__ __noinline__ void gemm_pass(const KernelParams& p, const float* X, uint32_t mc, uint32_t K, const __nv_bfloat16* g,
                          RowPtr row_ptr, uint32_t nrows, float* C, uint32_t ldc, float* work) {
  float* inv_rms = work + kGemmStages * kGemmStageFloats;
  const uint32_t t = threadIdx.x, warp = t / 32, lane = t % 32;
  const uint32_t wm = warp % 4, wn = warp / 4, quad = lane % 4;
  const uint32_t chunks = (K + kGemmK - 1) / kGemmK;
  auto xs = [&](uint32_t st) { return work + st * kGemmStageFloats; };
  auto ws = [&](uint32_t st) { return reinterpret_cast<__nv_bfloat16*>(work + st * kGemmStageFloats + kGemmM * kGemmXLd); };
  auto gs = [&](uint32_t st) { return ws(st) + kGemmN * kGemmLd; };

  // One stage: kGemmM x kGemmK activations in 16-byte pieces (8 per thread), kGemmN x kGemmK
  // weights (2 per thread) and the norm weights of its columns (8 threads); rows past mc and columns
  // past K are zero-filled. Always one commit group, so that wait_group counts stages.
  auto load_stage = [&](uint32_t c) {
    if (c < chunks) {
      const uint32_t st = c % kGemmStages;
#pragma unroll
      for (uint32_t j = 0; j < kGemmM * kGemmK / 4 / kThreads; ++j) {
        const uint32_t i = t + j * kThreads, r = i / (kGemmK / 4), col = c * kGemmK + (i % (kGemmK / 4)) * 4;
        const bool valid = r < mc && col < K;
        cp_async16(xs(st) + r * kGemmXLd + (i % (kGemmK / 4)) * 4, X + (valid ? size_t(r) * K + col : 0), valid);
      }
#pragma unroll
      for (uint32_t j = 0; j < kGemmN * kGemmK / 8 / kThreads; ++j) {
        // Eight consecutive threads take one 16-byte piece of 8 consecutive rows: in the paged
        // layout (cuda/paged_weights.h) those are 128 contiguous bytes when the rows are a group
        // (a thread per piece along a row put a warp's accesses 128 bytes apart). Prefill layers
        // took 7% longer after the layout change, and this mapping alone did not win it back
        // (H200, 1B shape).
        const uint32_t i = t + j * kThreads, n = i % 8 + i / 64 * 8, piece = i / 8 % 8;
        const uint32_t col = c * kGemmK + piece * 8;
        const bool valid = col < K;
        cp_async16(ws(st) + n * kGemmLd + piece * 8, row_ptr(n < nrows ? n : 0).at(valid ? col : 0), valid);
      }
      if (g && t < kGemmK / 8) {
        const uint32_t col = c * kGemmK + t * 8;
        cp_async16(gs(st) + t * 8, g + (col < K ? col : 0), col < K);
      }
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
  float ss[2][2] = {{0, 0}, {0, 0}};  // sum of squares of rows wm*32 + i*16 + lane/4 + 8h, this quad's columns

#pragma unroll
  for (uint32_t c = 0; c + 1 < kGemmStages; ++c) load_stage(c);
  for (uint32_t c = 0; c < chunks; ++c) {
    asm volatile("cp.async.wait_group %0;" ::"n"(kGemmStages - 2) : "memory");
    sync_consumers();  // stage c is in place for everyone, and everyone is done with stage c - 1
    load_stage(c + kGemmStages - 1);  // into the stage that c - 1 used
    const float* x = xs(c % kGemmStages);
    const __nv_bfloat16* w = ws(c % kGemmStages);
    const __nv_bfloat16* gw = gs(c % kGemmStages);
#pragma unroll
    for (uint32_t kk = 0; kk < kGemmK; kk += 16) {
      // Norm weights of this thread's columns (kk + 2 quad + {0, 1, 8, 9}), from the stage.
      float g0 = 1, g1 = 1, g8 = 1, g9 = 1;
      if (g) {
        const __nv_bfloat162 lo = *reinterpret_cast<const __nv_bfloat162*>(gw + kk + 2 * quad);
        const __nv_bfloat162 hi = *reinterpret_cast<const __nv_bfloat162*>(gw + kk + 2 * quad + 8);
        g0 = __low2float(lo), g1 = __high2float(lo), g8 = __low2float(hi), g9 = __high2float(hi);
      }
      // A fragments from fp32: a0 row r cols (c, c+1), a1 row r+8, a2 row r cols +8, a3 row r+8 cols +8.
      uint32_t a[2][4];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const float* xr = x + (wm * 32 + i * 16 + lane / 4) * kGemmXLd + kk + 2 * quad;
        const float2 v0 = *reinterpret_cast<const float2*>(xr);
        const float2 v1 = *reinterpret_cast<const float2*>(xr + 8 * kGemmXLd);
        const float2 v2 = *reinterpret_cast<const float2*>(xr + 8);
        const float2 v3 = *reinterpret_cast<const float2*>(xr + 8 * kGemmXLd + 8);
        if (wn == 0) {  // the two warps of a row band see the same rows: one of them sums
          ss[i][0] += v0.x * v0.x + v0.y * v0.y + v2.x * v2.x + v2.y * v2.y;
          ss[i][1] += v1.x * v1.x + v1.y * v1.y + v3.x * v3.x + v3.y * v3.y;
        }
        a[i][0] = pack_bf16(v0.x * g0, v0.y * g1);
        a[i][1] = pack_bf16(v1.x * g0, v1.y * g1);
        a[i][2] = pack_bf16(v2.x * g8, v2.y * g9);
        a[i][3] = pack_bf16(v3.x * g8, v3.y * g9);
      }
      uint32_t b[4][2];
#pragma unroll
      for (int jp = 0; jp < 2; ++jp) {
        uint32_t r[4];
        ldmatrix_x4(r, w + (wn * 32 + jp * 16 + (lane / 16) * 8 + lane % 8) * kGemmLd + kk + ((lane / 8) % 2) * 8);
        b[2 * jp][0] = r[0], b[2 * jp][1] = r[1], b[2 * jp + 1][0] = r[2], b[2 * jp + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) mma_bf16(acc[i][j], a[i], b[j][0], b[j][1]);
    }
  }
  asm volatile("cp.async.wait_group 0;" ::: "memory");  // the empty groups past the last stage

  if (g) {
    if (wn == 0)
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          float v = ss[i][h];
          v += __shfl_xor_sync(0xFFFFFFFFu, v, 1);
          v += __shfl_xor_sync(0xFFFFFFFFu, v, 2);
          if (quad == 0) inv_rms[wm * 32 + i * 16 + lane / 4 + 8 * h] = rsqrtf(v / K + p.dims.norm_eps);
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
