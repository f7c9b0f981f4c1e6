// Tensor-core passes for prefill tiles: C[m][n] = x[m] . W[row(n)] for up to kGemmM tokens and
// kN (64, 96 or 128) weight rows, with bf16 mma.sync (m16n8k16, sm_80+) and fp32 accumulation.
//
// A prefill tile multiplies every prompt token by its weight rows, so the weights are reused
// kGemmM times from shared memory instead of being streamed once per token (the CUDA-core path
// reads them once per 8 tokens). The activations come in bf16 (prefill programs keep the operands
// of their matrix products in bf16, normalized by their own Norm instructions: kFlagBf16In in
// isa.h), so a stage is two plain copies that the warps read with ldmatrix as they land.
//
// Pipeline: kGemmStages stages of kGemmK columns, activations and weight rows both by cp.async, so
// that up to three stages are in flight while the tensor cores work on a fourth; one barrier per
// stage. (Session 7 kept the activations in fp32: each stage was 32 KB of them, rounded to bf16 by
// all threads into an A tile behind a second barrier, with the RMSNorm folded in there.)

#pragma once

#include "cuda/tensor_core.cuh"

namespace mk::cuda {

constexpr uint32_t kGemmM = 128;  // tokens per pass: 4 warps of 32 along M
constexpr uint32_t kGemmK = 64;   // columns per stage
constexpr uint32_t kGemmStages = 4;
// Weight rows per pass: kGemmN, or kGemmWideN for gated tiles (their up and gate rows together),
// which halves how often the tile's activations are read again. Two warps along N, each a warp
// tile of 32 tokens by kN / 2 rows.
constexpr uint32_t kGemmN = 64, kGemmWideN = 128;
// QKV tiles' rows in one pass (kPrefillQkvRows in graph/decoder.cpp: one wave of tiles on Llama-3.2-1B).
constexpr uint32_t kGemmQkvN = 96;
// Row stride of the bf16 tiles in shared memory: 16 bytes of padding put the 8 rows that one
// ldmatrix reads in 8 different bank groups.
constexpr uint32_t kGemmLd = kGemmK + 8;
static_assert(kGemmK == 64, "a stage's row is 8 pieces of 16 bytes: load_stage maps 8 threads to them");

// A stage: activations [kGemmM][kGemmLd] and weights [kN][kGemmLd], both bf16.
__host__ __device__ constexpr uint32_t gemm_stage_floats(uint32_t kN) { return (kGemmM + kN) * kGemmLd / 2; }
// The shared memory of a pass: its stages. They are free again once the pass's products are done:
// C may lie over them (matvec_gemm puts it there).
__host__ __device__ constexpr uint32_t gemm_work_floats(uint32_t kN) { return kGemmStages * gemm_stage_floats(kN); }
// C's row stride over the stages: 8 floats of padding (kN = 0 mod 32) keep its stores conflict-free.
__host__ __device__ constexpr uint32_t gemm_ldc(uint32_t kN) { return kN + 8; }
static_assert(kGemmM * gemm_ldc(kGemmWideN) <= gemm_work_floats(kGemmWideN), "C fits over the stages");
static_assert(kGemmM * gemm_ldc(kGemmN) <= gemm_work_floats(kGemmN), "C fits over the stages");
// Prefill tiles at least this tall (tokens) use the tensor cores; fewer would waste most of a pass.
constexpr uint32_t kGemmMinTokens = 16;

// When a tile can take the tensor-core path: bf16 activations (without a fused norm: the graph
// gives bf16 inputs their own Norm instruction), whose columns come in 16-byte pieces.
__device__ __forceinline__ bool gemm_fits(const Instruction& ins, uint32_t tokens, uint32_t K, InNorm norm) {
  return (ins.flags & kFlagBf16In) && norm.weight == kNone && tokens >= kGemmMinTokens && K % 8 == 0;
}

// One pass: tokens [0, mc) of X (bf16, row stride K, mc <= kGemmM) against weight rows
// row_ptr(0 .. nrows) (PagedRows, nrows <= kN, each K bf16). Writes C[m * ldc + n] for m < mc,
// n < nrows, in pairs (ldc even, C 8-byte aligned; ldc = 8 mod 32 makes the stores conflict-free:
// a half-warp's 16 pairs cover 4 rows by 4 pairs). `work`: gemm_work_floats(kN) of shared memory;
// C may be `work` itself (it is written once the stages are no longer read). Ends with a barrier:
// C is ready for every consumer thread.
template <uint32_t kN, class RowPtr>
__device__ __noinline__ void gemm_pass(const __nv_bfloat16* X, uint32_t mc, uint32_t K, RowPtr row_ptr, uint32_t nrows,
                                       float* C, uint32_t ldc, float* work) {
  static_assert(kN % 32 == 0 && kN <= 128, "two warps along N, warp tiles of a multiple of 16 rows");
  constexpr uint32_t kWarpN = kN / 2, kJ = kWarpN / 8;  // rows per warp; n8 tiles per warp
  constexpr uint32_t kStage = gemm_stage_floats(kN);
  const uint32_t t = threadIdx.x, warp = t / 32, lane = t % 32;
  const uint32_t wm = warp % 4, wn = warp / 4;
  const uint32_t chunks = (K + kGemmK - 1) / kGemmK;
  auto xs = [&](uint32_t st) { return reinterpret_cast<__nv_bfloat16*>(work + st * kStage); };
  auto ws = [&](uint32_t st) { return xs(st) + kGemmM * kGemmLd; };

  // What this thread copies each stage, fixed for the pass, so that a stage's loads are a uniform
  // offset from these. Eight consecutive threads take the 8 pieces of 16 bytes of a row's stage.
  // Activations: rows t / 8 + 32 j (zero past mc). Weights: eight consecutive threads take one piece
  // of 8 consecutive rows, which in the paged layout (cuda/paged_weights.h) are 128 contiguous
  // bytes (K % 8 == 0: gemm_fits), and a stage further along a row is 8 blocks of 64 elements further.
  constexpr uint32_t kXPieces = kGemmM * kGemmK / 8 / kThreads, kWPieces = kN * kGemmK / 8 / kThreads;
  const uint32_t x_piece = t % 8, w_piece = t / 8 % 8;
  const __nv_bfloat16* x_src = X + size_t(t / 8) * K + x_piece * 8;
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
      const bool x_in = c * kGemmK + x_piece * 8 < K, w_in = c * kGemmK + w_piece * 8 < K;
#pragma unroll
      for (uint32_t j = 0; j < kXPieces; ++j) {
        const uint32_t r = t / 8 + j * (kThreads / 8);
        const bool valid = x_in && r < mc;
        cp_async16(xs(st) + r * kGemmLd + x_piece * 8, valid ? x_src + size_t(j * (kThreads / 8)) * K + c * kGemmK : X,
                   valid);
      }
#pragma unroll
      for (uint32_t j = 0; j < kWPieces; ++j) {
        const uint32_t n = t % 8 + t / 64 * 8 + j * (kThreads / 8);
        cp_async16(ws(st) + n * kGemmLd + w_piece * 8, w_in ? w_src[j] + c * (kGemmK * kPageRows) : w_any, w_in);
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

#pragma unroll
  for (uint32_t c = 0; c + 1 < kGemmStages; ++c) load_stage(c);
  for (uint32_t c = 0; c < chunks; ++c) {
    asm volatile("cp.async.wait_group %0;" ::"n"(kGemmStages - 2) : "memory");
    sync_consumers();  // stage c is in place for everyone; everyone is done with stage c - 1
    load_stage(c + kGemmStages - 1);  // into the stage that c - 1 used
    const __nv_bfloat16* x = xs(c % kGemmStages);
    const __nv_bfloat16* w = ws(c % kGemmStages);
#pragma unroll
    for (uint32_t kk = 0; kk < kGemmK; kk += 16) {
      uint32_t a[2][4];
#pragma unroll
      for (int i = 0; i < 2; ++i)
        ldmatrix_x4(a[i], x + (wm * 32 + i * 16 + lane % 16) * kGemmLd + kk + (lane / 16) * 8);
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
  sync_consumers();  // every warp is done with the stages: C may lie over them

#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint32_t m = wm * 32 + i * 16 + lane / 4 + h * 8;
      if (m >= mc) continue;
#pragma unroll
      for (uint32_t j = 0; j < kJ; ++j) {
        const uint32_t n = wn * kWarpN + j * 8 + (lane % 4) * 2;  // even: ldc and C are too
        if (n + 1 < nrows)
          *reinterpret_cast<float2*>(C + m * ldc + n) = make_float2(acc[i][j][2 * h], acc[i][j][2 * h + 1]);
        else if (n < nrows)
          C[m * ldc + n] = acc[i][j][2 * h];
      }
    }
  sync_consumers();
}

}  // namespace mk::cuda
