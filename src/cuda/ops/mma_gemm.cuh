// Tensor-core passes for prefill tiles: C[m][n] = x'[m] . W[row(n)] for up to kGemmM tokens and
// kN (64 or 128) weight rows, with bf16 mma.sync (m16n8k16, sm_80+) and fp32 accumulation.
//
// A prefill tile multiplies every prompt token by its weight rows, so the weights are reused
// kGemmM times from shared memory instead of being streamed once per token (the CUDA-core path
// reads them once per 8 tokens). Activations are fp32 in the arena; they are rounded to bf16 as a
// bf16 framework's activations are. A fused RMSNorm costs nothing extra: its weight scales x as it
// is rounded, and 1/rms(x), accumulated from the same values, scales the finished dot products
// (W . (x * g / rms) = (W . (x * g)) / rms).
//
// Pipeline: kGemmStages stages of kGemmK columns, activations (fp32) and weight rows (bf16) both by
// cp.async, so that two stages are in flight while the tensor cores work on a third. Each stage's
// activations are rounded to bf16 once, by all threads together, into one A tile that every warp
// then reads with ldmatrix. (Each warp used to build its A fragments from the fp32 stage itself:
// twice the shared-memory bytes, and every element rounded and scaled by both warps of its row
// band; with the address arithmetic of every load recomputed per stage, a 512-token prefill spent
// most of its issue slots off the tensor cores: 62 us per 128 x 64 x 2048 gate/up tile, H200.)

#pragma once

#include "cuda/tensor_core.cuh"

namespace mk::cuda {

constexpr uint32_t kGemmM = 128;  // tokens per pass: 4 warps of 32 along M
constexpr uint32_t kGemmK = 64;   // columns per stage
constexpr uint32_t kGemmStages = 3;
// Weight rows per pass: kGemmN, or kGemmWideN for gated tiles (their up and gate rows together),
// which halves how often the tile's activations are read again. Two warps along N, each a warp
// tile of 32 tokens by kN / 2 rows.
constexpr uint32_t kGemmN = 64, kGemmWideN = 128;
// Row strides in shared memory. bf16 tiles (weights, and the rounded activations): 16 bytes of
// padding put the 8 rows that one ldmatrix reads in 8 different bank groups. The fp32 activation
// stage: a stride of 4 (mod 32) words puts the 8 rows that a quarter-warp's 16-byte loads touch (a
// thread per row while rounding) in 8 different bank groups.
constexpr uint32_t kGemmLd = kGemmK + 8;
constexpr uint32_t kGemmXLd = kGemmK + 4;
static_assert(kGemmK == 64, "load_stage maps 8 threads to the 8 pieces of 16 bytes of a row's stage");

// A stage: activations [kGemmM][kGemmXLd] fp32, weights [kN][kGemmLd] bf16, norm weights [kGemmK] bf16.
__host__ __device__ constexpr uint32_t gemm_stage_floats(uint32_t kN) {
  return kGemmM * kGemmXLd + kN * kGemmLd / 2 + kGemmK / 2;
}
// The shared memory of a pass: its stages, the rounded activations [kGemmM][kGemmLd] bf16, and
// two partial sums of squares per token (then 1/rms). The stages are free again once the pass's
// products are done: C may lie over them (matvec_gemm puts it there).
__host__ __device__ constexpr uint32_t gemm_work_floats(uint32_t kN) {
  return kGemmStages * gemm_stage_floats(kN) + kGemmM * kGemmLd / 2 + 2 * kGemmM;
}
static_assert(kGemmM * kGemmWideN <= kGemmStages * gemm_stage_floats(kGemmWideN), "C fits over the stages");
// Prefill tiles at least this tall (tokens) use the tensor cores; fewer would waste most of a pass.
constexpr uint32_t kGemmMinTokens = 16;

// When a tile can take the tensor-core path: the columns come in 16-byte pieces, and the fused norm
// (if any) is an RMSNorm (a LayerNorm's mean does not factor out of the dot product).
__device__ __forceinline__ bool gemm_fits(const KernelParams& p, uint32_t tokens, uint32_t K, InNorm norm) {
  return tokens >= kGemmMinTokens && K % 8 == 0 &&
         (norm.weight == kNone || p.dims.norm_kind == uint8_t(NormKind::Rms));
}

// One pass: tokens [0, mc) of X (row stride K floats, mc <= kGemmM) against weight rows
// row_ptr(0 .. nrows) (PagedRows, nrows <= kN, each K bf16). Writes C[m * ldc + n] for m < mc, n < nrows,
// divided by rms(x[m]) when `g` (the RMSNorm weight) is given. `work`: gemm_work_floats(kN) of
// shared memory; C may be `work` itself (it is written once the stages are no longer read). Ends
// with a barrier: C is ready for every consumer thread.
template <uint32_t kN, class RowPtr>
__device__ __noinline__ void gemm_pass(const KernelParams& p, const float* X, uint32_t mc, uint32_t K, const __nv_bfloat16* g,
                                       RowPtr row_ptr, uint32_t nrows, float* C, uint32_t ldc, float* work) {
  static_assert(kN == 64 || kN == 128, "two warps along N, warp tiles of 32 or 64 rows");
  constexpr uint32_t kWarpN = kN / 2, kJ = kWarpN / 8;  // rows per warp; n8 tiles per warp
  constexpr uint32_t kStage = gemm_stage_floats(kN);
  __nv_bfloat16* a_tile = reinterpret_cast<__nv_bfloat16*>(work + kGemmStages * kStage);
  float* ss_part = work + kGemmStages * kStage + kGemmM * kGemmLd / 2;  // [2][kGemmM], then 1/rms in [0]
  const uint32_t t = threadIdx.x, warp = t / 32, lane = t % 32;
  const uint32_t wm = warp % 4, wn = warp / 4;
  const uint32_t chunks = (K + kGemmK - 1) / kGemmK;
  auto xs = [&](uint32_t st) { return work + st * kStage; };
  auto ws = [&](uint32_t st) { return reinterpret_cast<__nv_bfloat16*>(work + st * kStage + kGemmM * kGemmXLd); };
  auto gs = [&](uint32_t st) { return ws(st) + kN * kGemmLd; };

  // What this thread copies each stage, fixed for the pass, so that a stage's loads are a uniform
  // offset from these. Activations: 16-byte pieces, 16 per row, rows t / 16 + 16 j (zero past mc).
  // Weights: eight consecutive threads take one 16-byte piece of 8 consecutive rows, which in the
  // paged layout (cuda/paged_weights.h) are 128 contiguous bytes (K % 8 == 0: gemm_fits), and a
  // stage further along a row is 8 blocks of 64 elements further.
  constexpr uint32_t kXPieces = kGemmM * kGemmK / 4 / kThreads, kWPieces = kN * kGemmK / 8 / kThreads;
  const uint32_t x_piece = t % 16, w_piece = t / 8 % 8;
  const float* x_src = X + size_t(t / 16) * K + x_piece * 4;
  const __nv_bfloat16* w_src[kWPieces];
  const __nv_bfloat16* w_any = row_ptr(0).at(0);  // an address to name when a piece is past K (zero-filled)
#pragma unroll
  for (uint32_t j = 0; j < kWPieces; ++j) {
    const uint32_t n = t % 8 + t / 64 * 8 + j * (kThreads / 8);
    w_src[j] = row_ptr(n < nrows ? n : 0).at(w_piece * 8);
  }

  // One stage; pieces past K are zero-filled. Always one commit group, so that wait_group counts
  // stages.
  auto load_stage = [&](uint32_t c) {
    if (c < chunks) {
      const uint32_t st = c % kGemmStages;
      const bool x_in = c * kGemmK + x_piece * 4 < K, w_in = c * kGemmK + w_piece * 8 < K;
#pragma unroll
      for (uint32_t j = 0; j < kXPieces; ++j) {
        const uint32_t r = t / 16 + j * (kThreads / 16);
        const bool valid = x_in && r < mc;
        cp_async16(xs(st) + r * kGemmXLd + x_piece * 4, valid ? x_src + size_t(j * (kThreads / 16)) * K + c * kGemmK : X,
                   valid);
      }
#pragma unroll
      for (uint32_t j = 0; j < kWPieces; ++j) {
        const uint32_t n = t % 8 + t / 64 * 8 + j * (kThreads / 8);
        cp_async16(ws(st) + n * kGemmLd + w_piece * 8, w_in ? w_src[j] + c * (kGemmK * kPageRows) : w_any, w_in);
      }
      if (g && t < kGemmK / 8) {
        const uint32_t col = c * kGemmK + t * 8;
        cp_async16(gs(st) + t * 8, g + (col < K ? col : 0), col < K);
      }
    }
    asm volatile("cp.async.commit_group;" ::: "memory");
  };

  float acc[2][kJ][4];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < int(kJ); ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0;
  // Rounding: thread t takes token row t % 128, columns (t / 128) * 32 .. + 32 of each stage, and
  // keeps that row part's sum of squares.
  const uint32_t cvt_row = t % kGemmM, cvt_col = t / kGemmM * (kGemmK / 2);
  float ss = 0;

#pragma unroll
  for (uint32_t c = 0; c + 1 < kGemmStages; ++c) load_stage(c);
  for (uint32_t c = 0; c < chunks; ++c) {
    asm volatile("cp.async.wait_group %0;" ::"n"(kGemmStages - 2) : "memory");
    sync_consumers();  // stage c is in place for everyone; everyone is done with stage c - 1 and the A tile
    load_stage(c + kGemmStages - 1);  // into the stage that c - 1 used
    const float* x = xs(c % kGemmStages);
    const __nv_bfloat16* w = ws(c % kGemmStages);
    {
      const float* xr = x + cvt_row * kGemmXLd + cvt_col;
      const __nv_bfloat16* gr = gs(c % kGemmStages) + cvt_col;
      uint4* dst = reinterpret_cast<uint4*>(a_tile + cvt_row * kGemmLd + cvt_col);
#pragma unroll
      for (uint32_t q = 0; q < kGemmK / 2 / 8; ++q) {  // 8 columns at a time: one 16-byte store
        const float4 v0 = *reinterpret_cast<const float4*>(xr + q * 8);
        const float4 v1 = *reinterpret_cast<const float4*>(xr + q * 8 + 4);
        ss += v0.x * v0.x + v0.y * v0.y + v0.z * v0.z + v0.w * v0.w + v1.x * v1.x + v1.y * v1.y + v1.z * v1.z +
              v1.w * v1.w;
        float s[8] = {1, 1, 1, 1, 1, 1, 1, 1};
        if (g) {
          const uint4 gw = *reinterpret_cast<const uint4*>(gr + q * 8);
          const uint32_t gp[4] = {gw.x, gw.y, gw.z, gw.w};
#pragma unroll
          for (int e = 0; e < 4; ++e) s[2 * e] = __uint_as_float(gp[e] << 16), s[2 * e + 1] = __uint_as_float(gp[e] & 0xFFFF0000u);
        }
        dst[q] = make_uint4(pack_bf16(v0.x * s[0], v0.y * s[1]), pack_bf16(v0.z * s[2], v0.w * s[3]),
                            pack_bf16(v1.x * s[4], v1.y * s[5]), pack_bf16(v1.z * s[6], v1.w * s[7]));
      }
    }
    sync_consumers();  // the A tile is complete
#pragma unroll
    for (uint32_t kk = 0; kk < kGemmK; kk += 16) {
      uint32_t a[2][4];
#pragma unroll
      for (int i = 0; i < 2; ++i)
        ldmatrix_x4(a[i], a_tile + (wm * 32 + i * 16 + lane % 16) * kGemmLd + kk + (lane / 16) * 8);
      uint32_t b[kJ][2];
#pragma unroll
      for (uint32_t jp = 0; jp < kJ / 2; ++jp) {
        uint32_t r[4];
        ldmatrix_x4(r, w + (wn * kWarpN + jp * 16 + (lane / 16) * 8 + lane % 8) * kGemmLd + kk + ((lane / 8) % 2) * 8);
        b[2 * jp][0] = r[0], b[2 * jp][1] = r[1], b[2 * jp + 1][0] = r[2], b[2 * jp + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (uint32_t j = 0; j < kJ; ++j) mma_bf16(acc[i][j], a[i], b[j][0], b[j][1]);
    }
  }
  asm volatile("cp.async.wait_group 0;" ::: "memory");  // the empty groups past the last stage

  if (g) ss_part[t / kGemmM * kGemmM + cvt_row] = ss;
  sync_consumers();  // every warp is done with the stages (C may lie over them), and the sums are in
  if (g && t < kGemmM) ss_part[t] = rsqrtf((ss_part[t] + ss_part[kGemmM + t]) / K + p.dims.norm_eps);
  if (g) sync_consumers();
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint32_t m = wm * 32 + i * 16 + lane / 4 + h * 8;
      if (m >= mc) continue;
      const float scale = g ? ss_part[m] : 1.0f;
#pragma unroll
      for (uint32_t j = 0; j < kJ; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const uint32_t n = wn * kWarpN + j * 8 + (lane % 4) * 2 + e;
          if (n < nrows) C[m * ldc + n] = acc[i][j][2 * h + e] * scale;
        }
    }
  sync_consumers();
}

}  // namespace mk::cuda
