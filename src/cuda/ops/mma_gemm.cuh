// Tensor-core passes for prefill tiles: C[m][n] = x[m] . W[row(n)] for up to kGemmM tokens and
// kN (64, 96 or 128) weight rows, bf16 in, fp32 accumulation: with Hopper's wgmma on sm_90a
// (gemm_pass_wgmma), with mma.sync (m16n8k16) on every other target (gemm_pass_mma).
//
// A prefill tile multiplies every prompt token by its weight rows, so the weights are reused
// kGemmM times from shared memory instead of being streamed once per token (the CUDA-core path
// reads them once per 8 tokens). The activations come in bf16 (prefill programs keep the operands
// of their matrix products in bf16, normalized by their own Norm instructions: kFlagBf16In in
// isa.h), so a stage is two plain copies that the warps read with ldmatrix as they land.
//
// mma.sync pipeline: kGemmStages stages of kGemmK columns, activations and weight rows both by
// cp.async, so that up to three stages are in flight while the tensor cores work on a fourth; one
// barrier per stage. (Session 7 kept the activations in fp32: each stage was 32 KB of them, rounded to bf16 by
// all threads into an A tile behind a second barrier, with the RMSNorm folded in there.)

#pragma once

#include "cuda/tensor_core.cuh"
#include "cuda/wgmma.cuh"

namespace mk::cuda {

constexpr uint32_t kGemmM = 128;  // tokens per pass: 4 warps of 32 along M
constexpr uint32_t kGemmK = 64;   // columns per stage
constexpr uint32_t kGemmStages = 4;
// Weight rows per pass: kGemmN, or kGemmWideN for gated tiles (their up and gate rows together),
// which halves how often the tile's activations are read again. Two warps along N, each a warp
// tile of 32 tokens by kN / 2 rows.
constexpr uint32_t kGemmN = 64, kGemmWideN = 128;
// On sm_90a, gated tiles of 128 outputs or more take one pass of 256 rows (128 up, 128 gate): each
// stage then reads the activations for twice the rows. A pass is bound by the L2's bandwidth (below),
// and 128 tokens by 256 rows do 85 FLOP a byte loaded where 128 by 128 do 64. mma.sync's register
// tiles stop at 128 rows.
constexpr uint32_t kGemmWgmmaWideN = 256;
// QKV tiles' rows in one pass (kPrefillQkvRows in graph/decoder.cpp: one wave of tiles on Llama-3.2-1B).
constexpr uint32_t kGemmQkvN = 96;
// Row stride of the bf16 tiles in shared memory: 16 bytes of padding put the 8 rows that one
// ldmatrix reads in 8 different bank groups.
constexpr uint32_t kGemmLd = kGemmK + 8;
static_assert(kGemmK == 64, "a stage's row is 8 pieces of 16 bytes: StagePieces maps 8 threads to them");

// A stage: activations [kGemmM][kGemmLd] and weights [kN][kGemmLd], both bf16.
__host__ __device__ constexpr uint32_t gemm_stage_floats(uint32_t kN) { return (kGemmM + kN) * kGemmLd / 2; }
// The wgmma form's stage (sm_90a): the same rows, swizzled instead of padded (cuda/wgmma.cuh); a
// whole number of KB for every kN (a multiple of 8), so that every stage stays 1024-byte aligned.
__host__ __device__ constexpr uint32_t wgmma_stage_floats(uint32_t kN) { return (kGemmM + kN) * kGemmK / 2; }
// Its stage slots (it keeps slots - 2 stages loading): as many as fit in an sm_90 block's 227 KB
// beside what the ops keep there (QKV tiles keep their outputs: fewer slots for their width). Not
// what bounds a pass: 2 stages loading timed as 4. The loads do (without them a pass took a third
// of the time): with every SM in a pass, a 2048-column pass of 64 rows takes 21 us, of 128 rows 32
// (bench/gemm_rate.cu, H200), the stages of all SMs together reading 4.4-4.8 TB/s from L2
// (docs/PERFORMANCE.md, session 17).
__host__ __device__ constexpr uint32_t wgmma_slots(uint32_t kN) { return kN > 128 ? 4 : kN == 96 ? 5 : 6; }
// The shared memory of a pass: its stages. They are free again once the pass's products are done:
// C may lie over them (matvec_gemm puts it there). Device code only: the form, and so the size,
// depends on the target.
__host__ __device__ constexpr uint32_t gemm_work_floats(uint32_t kN) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  return wgmma_slots(kN) * wgmma_stage_floats(kN);
#else
  return kGemmStages * gemm_stage_floats(kN);
#endif
}
// C's row stride over the stages: 8 floats of padding (kN = 0 mod 32) keep its stores conflict-free.
__host__ __device__ constexpr uint32_t gemm_ldc(uint32_t kN) { return kN + 8; }
static_assert(kGemmM * gemm_ldc(kGemmWideN) <= gemm_work_floats(kGemmWideN), "C fits over the stages");
static_assert(kGemmM * gemm_ldc(kGemmN) <= gemm_work_floats(kGemmN), "C fits over the stages");
static_assert(kGemmM * gemm_ldc(kGemmWideN) <= wgmma_slots(kGemmWideN) * wgmma_stage_floats(kGemmWideN) &&
                  kGemmM * gemm_ldc(kGemmN) <= wgmma_slots(kGemmN) * wgmma_stage_floats(kGemmN) &&
                  kGemmM * gemm_ldc(kGemmWgmmaWideN) <= wgmma_slots(kGemmWgmmaWideN) * wgmma_stage_floats(kGemmWgmmaWideN),
              "C fits over the wgmma stages");
// Prefill tiles at least this tall (tokens) use the tensor cores; fewer would waste most of a pass.
constexpr uint32_t kGemmMinTokens = 16;

// When a tile can take the tensor-core path: bf16 activations (without a fused norm: the graph
// gives bf16 inputs their own Norm instruction), whose columns come in 16-byte pieces.
__device__ __forceinline__ bool gemm_fits(const Instruction& ins, uint32_t tokens, uint32_t K, InNorm norm) {
  return (ins.flags & kFlagBf16In) && norm.weight == kNone && tokens >= kGemmMinTokens && K % 8 == 0;
}

// Row n of a pass from column k0 on (a split matvec's range, k_range): at(k) is its column k0 + k.
struct PagedRowFrom {
  PagedRow row;
  uint32_t k0;
  __device__ __forceinline__ const __nv_bfloat16* at(uint32_t k) const { return row.at(k0 + k); }
};

// What one thread copies of every stage of a pass, in both forms: activation rows t / 8 + 32 j
// (j < 4), piece t % 8, so that eight consecutive threads copy one row's 128 bytes; weight rows
// t % 8 + 8 (t / 64) + 32 j (j < kN / 32), piece t / 8 % 8, so that eight consecutive threads copy
// one piece of 8 consecutive rows, which in the paged layout (cuda/paged_weights.h) are 128
// contiguous bytes (K % 8 == 0: gemm_fits). The sources are fixed for the pass, so that a stage's
// are a uniform offset further: kGemmK columns of X, 8 blocks of 64 elements of a paged row.
template <uint32_t kN>
struct StagePieces {
  static constexpr uint32_t kX = kGemmM / 32, kW = kN / 32;
  const __nv_bfloat16 *X, *x_src, *w_src[kW], *w_any;  // w_any: an address to name for zero-filled pieces
  uint32_t ldx, mc, K, xr, xb, wr, wb;

  template <class RowPtr>
  __device__ __forceinline__ StagePieces(const __nv_bfloat16* X_, uint32_t ldx_, uint32_t mc_, uint32_t K_, RowPtr row_ptr,
                                         uint32_t nrows)
      : X(X_), w_any(row_ptr(0).at(0)), ldx(ldx_), mc(mc_), K(K_) {
    const uint32_t t = threadIdx.x;
    xr = t / 8, xb = t % 8, wr = t % 8 + t / 64 * 8, wb = t / 8 % 8;
    x_src = X + size_t(xr) * ldx + xb * 8;
#pragma unroll
    for (uint32_t j = 0; j < kW; ++j) {
      const uint32_t n = wr + j * 32;
      w_src[j] = row_ptr(n < nrows ? n : 0).at(wb * 8);
    }
  }

  // Stage c's pieces, by cp.async (no commit): activation row r's piece b to xs + x_at(r, b),
  // weight row n's to ws + w_at(n, b) (elements). Pieces past K and rows past mc are zero-filled.
  template <class XAt, class WAt>
  __device__ __forceinline__ void copy(uint32_t c, __nv_bfloat16* xs, __nv_bfloat16* ws, XAt x_at, WAt w_at) const {
    const bool x_in = c * kGemmK + xb * 8 < K, w_in = c * kGemmK + wb * 8 < K;
    // Row r + 32 j lies 32 rows further than row r in every layout (the swizzle's period, 8 rows,
    // divides 32): one offset a thread and a constant step. Left to find that itself, ptxas kept an
    // offset register for each weight row, and the sm_90a prefill kernel reloaded spilled ones at
    // every stage (one in the 128-row pass, five in the 256-row one; its spills 300 / 688 bytes,
    // 212 / 612 with the step).
    const uint32_t x_at0 = x_at(xr, xb), x_step = x_at(32, 0) - x_at(0, 0);
    const uint32_t w_at0 = w_at(wr, wb), w_step = w_at(32, 0) - w_at(0, 0);
#pragma unroll
    for (uint32_t j = 0; j < kX; ++j) {
      const bool valid = x_in && xr + j * 32 < mc;
      cp_async16(xs + x_at0 + j * x_step, valid ? x_src + size_t(j * 32) * ldx + c * kGemmK : X, valid);
    }
#pragma unroll
    for (uint32_t j = 0; j < kW; ++j)
      cp_async16(ws + w_at0 + j * w_step, w_in ? w_src[j] + c * (kGemmK * kPageRows) : w_any, w_in);
  }
};
static_assert(kSmemHead * sizeof(float) % 1024 == 0, "the ops' work after kSmemHead keeps the 1 KB alignment");
static_assert(kThreads == 256 && kGemmM == 128, "StagePieces: 32 rows for each j, 4 j for the activations");

// C[m][n] and C[m][n + 1] of a pass's output (an accumulator pair of both forms), the second only
// while n + 1 < nrows. n is even, and so are ldc and C's start: one 8-byte store.
__device__ __forceinline__ void store_c_pair(float* C, uint32_t ldc, uint32_t m, uint32_t n, uint32_t nrows, float v0,
                                             float v1) {
  if (n + 1 < nrows)
    *reinterpret_cast<float2*>(C + m * ldc + n) = make_float2(v0, v1);
  else if (n < nrows)
    C[m * ldc + n] = v0;
}

// One pass: tokens [0, mc) of X (bf16, row stride K, mc <= kGemmM) against weight rows
// row_ptr(0 .. nrows) (PagedRows, nrows <= kN, each K bf16). Writes C[m * ldc + n] for m < mc,
// n < nrows, in pairs (ldc even, C 8-byte aligned; ldc = 8 mod 32 makes the stores conflict-free:
// a half-warp's 16 pairs cover 4 rows by 4 pairs). `work`: gemm_work_floats(kN) of shared memory;
// C may be `work` itself (it is written once the stages are no longer read). Ends with a barrier:
// C is ready for every consumer thread.
// This is the mma.sync form (sm_80 onwards): two warps along N, four along M, ldmatrix fragments
// from padded row-major stages.
template <uint32_t kN, class RowPtr>
__device__ __noinline__ void gemm_pass_mma(const __nv_bfloat16* X, uint32_t ldx, uint32_t mc, uint32_t K, RowPtr row_ptr,
                                           uint32_t nrows, float* C, uint32_t ldc, float* work) {
  static_assert(kN % 32 == 0 && kN <= 128, "two warps along N, warp tiles of a multiple of 16 rows");
  constexpr uint32_t kWarpN = kN / 2, kJ = kWarpN / 8;  // rows per warp; n8 tiles per warp
  constexpr uint32_t kStage = gemm_stage_floats(kN);
  const uint32_t t = threadIdx.x, warp = t / 32, lane = t % 32;
  const uint32_t wm = warp % 4, wn = warp / 4;
  const uint32_t chunks = (K + kGemmK - 1) / kGemmK;
  auto xs = [&](uint32_t st) { return reinterpret_cast<__nv_bfloat16*>(work + st * kStage); };
  auto ws = [&](uint32_t st) { return xs(st) + kGemmM * kGemmLd; };

  // One stage; always one commit group, so that wait_group counts stages. Rows padded to kGemmLd.
  const StagePieces<kN> pieces(X, ldx, mc, K, row_ptr, nrows);
  auto row_major = [](uint32_t r, uint32_t b) { return r * kGemmLd + b * 8; };
  auto load_stage = [&](uint32_t c) {
    if (c < chunks) pieces.copy(c, xs(c % kGemmStages), ws(c % kGemmStages), row_major, row_major);
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
    if (c == 0) trace_phase(kPhaseInput);  // the pipeline filled (builds with MK_TRACE_PHASES)
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
        store_c_pair(C, ldc, m, wn * kWarpN + j * 8 + (lane % 4) * 2, nrows, acc[i][j][2 * h], acc[i][j][2 * h + 1]);
      }
    }
  sync_consumers();
}

// A wgmma pass's accumulators (thread t: rows 64 (t / 128) + 16 (t / 32 % 4) + t % 32 / 4 (+ 8),
// columns in pairs, cuda/wgmma.cuh) into C, rows below mc and columns below nrows; ends with a
// barrier: C is ready for every consumer thread.
template <uint32_t kN>
__device__ __forceinline__ void store_wgmma_acc(const float (&acc)[kN / 2], float* C, uint32_t ldc, uint32_t mc,
                                                uint32_t nrows) {
  const uint32_t t = threadIdx.x, wg = t / 128, warp = t / 32 % 4, lane = t % 32;
#pragma unroll
  for (uint32_t h = 0; h < 2; ++h) {
    const uint32_t m = wg * 64 + warp * 16 + lane / 4 + h * 8;
    if (m >= mc) continue;
#pragma unroll
    for (uint32_t j = 0; j < kN / 8; ++j) {
      store_c_pair(C, ldc, m, j * 8 + (lane % 4) * 2, nrows, acc[4 * j + 2 * h], acc[4 * j + 2 * h + 1]);
    }
  }
  sync_consumers();
}

// One k16 step of a pass's products: a warpgroup's 64 tokens by kN rows, a and w the step's
// descriptors. cuda/wgmma.cuh instantiates m64nNk16 up to N = 128: 256 rows are two m64n128
// products, the second on weight rows 128 onwards, 16 KB further in both stage layouts (swizzled
// rows of 128 bytes; core-matrix groups of 8 rows, 1 KB each).
template <uint32_t kN>
__device__ __forceinline__ void wgmma_k16(float (&acc)[kN / 2], uint64_t a, uint64_t w) {
  constexpr uint32_t kNI = kN > 128 ? 128 : kN;
#pragma unroll
  for (uint32_t h = 0; h < kN / kNI; ++h)
    wgmma_bf16<kNI>(*reinterpret_cast<float(*)[kNI / 2]>(acc + h * kNI / 2), a, w + h * (kNI * kGemmK * 2 >> 4));
}

// One stage's products, issued and committed (not waited for), for warpgroup wg's 64 tokens: the
// stage holds the activations as 128-byte swizzled rows, then the weights as core matrices (both
// forms of the pass lay it out so). Rows 64 wg onwards; 8-row groups 1 KB apart; a k16 step is 32
// bytes further in the activations (2 in the descriptor's 16-byte units), two core matrices (256
// bytes) in the weights.
template <uint32_t kN>
__device__ __forceinline__ void wgmma_stage_products(float (&acc)[kN / 2], const __nv_bfloat16* stage, uint32_t wg) {
  const uint64_t a = wgmma_desc_sw128(stage + wg * 64 * kGemmK, 1024);
  const uint64_t w = wgmma_desc_core(stage + kGemmM * kGemmK, 128, 1024);
  wgmma_fence();
#pragma unroll
  for (uint32_t kk = 0; kk < kGemmK / 16; ++kk) wgmma_k16<kN>(acc, a + 2 * kk, w + 16 * kk);
  wgmma_commit();
}

// The same pass on sm_90a's wgmma: each consumer warpgroup multiplies 64 tokens by all kN rows
// (m64nNk16, both operands from shared memory). A stage holds its activations as 128-byte swizzled
// rows (cuda/wgmma.cuh): piece b of row r at r * 128 + (b ^ r % 8) * 16 bytes; then its weights as
// the TMA form's, the paged layout's 8 x 8 blocks (no-swizzle core matrices, 128 bytes apart along
// K, 1 KB along rows), which eight neighbouring threads copy whole. With weights streamed from HBM
// (a short prompt's tiles), a 32-token pass of 128 rows takes 16.4 us this way, 29.9 with the
// weights as swizzled rows too (each 16-byte piece of a row from another 128-byte block), 25.2 by
// the TMA form; with weights L2-resident (128 tokens), 14.4 us against 31.4 and 25.2 (gemm_rate,
// H200, session 19). `work` must be 1024-byte aligned (the megakernel's and gemm_rate's shared
// memory are, and kSmemHead is a whole KB); the stages are a whole number of KB each.
// Stages are loaded kAhead = slots - 2 ahead, so that one group of wgmma may still read stage c - 1
// while stage c's is issued: before stage c + kAhead is loaded into the slot of c - 2, every
// warpgroup has waited for its wgmma of c - 2 (wgmma_wait<1> after issuing c - 1) and passed the
// barrier of stage c.
template <uint32_t kN, class RowPtr>
__device__ __forceinline__ void gemm_pass_wgmma(const __nv_bfloat16* X, uint32_t ldx, uint32_t mc, uint32_t K, RowPtr row_ptr,
                                                uint32_t nrows, float* C, uint32_t ldc, float* work) {
  static_assert(kN % 32 == 0 && (kN <= 128 || kN == 256) && kThreads == 256,
                "two warpgroups of 64 tokens; N a multiple of 32 up to 128, or 256");
  constexpr uint32_t kStage = wgmma_stage_floats(kN), kSlots = wgmma_slots(kN), kAhead = kSlots - 2;
  const uint32_t t = threadIdx.x, wg = t / 128;
  const uint32_t chunks = (K + kGemmK - 1) / kGemmK;
  auto xs = [&](uint32_t st) { return reinterpret_cast<__nv_bfloat16*>(work + st * kStage); };
  auto ws = [&](uint32_t st) { return xs(st) + kGemmM * kGemmK; };

  // One stage (one commit group): the activations as swizzled rows, the weights as core matrices.
  const StagePieces<kN> pieces(X, ldx, mc, K, row_ptr, nrows);
  auto swizzled = [](uint32_t r, uint32_t b) { return r * kGemmK + (b ^ r % 8) * 8; };
  auto core = [](uint32_t n, uint32_t b) { return (n / 8 * 8 + b) * 64 + n % 8 * 8; };
  auto load_stage = [&](uint32_t c) {
    if (c < chunks) pieces.copy(c, xs(c % kSlots), ws(c % kSlots), swizzled, core);
    asm volatile("cp.async.commit_group;" ::: "memory");
  };

  float acc[kN / 2];
#pragma unroll
  for (uint32_t i = 0; i < kN / 2; ++i) acc[i] = 0;
#pragma unroll
  for (uint32_t c = 0; c < kAhead; ++c) load_stage(c);
  for (uint32_t c = 0; c < chunks; ++c) {
    // This thread's pieces of stage c landed (one commit group per stage, kAhead - 1 younger).
    asm volatile("cp.async.wait_group %0;" ::"n"(kAhead - 1) : "memory");
    fence_proxy_async_shared();
    sync_consumers();  // everyone's pieces of stage c; every warpgroup is done with stage c - 2
    if (c == 0) trace_phase(kPhaseInput);  // the pipeline filled (builds with MK_TRACE_PHASES)
    wgmma_stage_products<kN>(acc, xs(c % kSlots), wg);
    load_stage(c + kAhead);
    wgmma_wait<1>();
  }
  wgmma_wait<0>();
  asm volatile("cp.async.wait_group 0;" ::: "memory");  // the empty groups past the last stage
  sync_consumers();  // every warpgroup is done with the stages: C may lie over them
  store_wgmma_acc<kN>(acc, C, ldc, mc, nrows);
}

// The same pass fed by the TMA (sm_90a). Warp 0 issues each stage's copies: the activations as one
// box of 128 tokens by 64 columns of `x_map` (a 2-D map of the bf16 activations with the 128-byte
// swizzle: the layout above; rows past the tensor arrive as zeros), the weights as one 1 KB bulk
// copy per group of 8 rows (the paged layout's 8 x 64 block: K-major core matrices, which wgmma
// reads without swizzle, 128 bytes apart along K and 1 KB apart along rows). Both complete on the
// slot's mbarrier, which the consumers wait on: no thread copies, no cp.async groups, no proxy
// fence. So row_ptr(8 g) must start a group of the paged layout whose 8 rows are the pass's rows
// 8 g .. 8 g + 7 (rows past nrows are never stored: any rows will do there). A slot is loaded
// again once every warpgroup's products of its stage are done (the barrier after
// wgmma_wait<1>), so kSlots - 1 stages are in flight. x_row0, x_col0: the pass's first token row
// and column in
// the map; `bars`: kSlots mbarriers in shared memory (initialized here: every phase of the last
// pass completed).
template <uint32_t kN, class RowPtr>
__device__ __forceinline__ void gemm_pass_tma(const void* x_map, uint32_t x_row0, uint32_t x_col0, uint32_t mc, uint32_t K,
                                              RowPtr row_ptr, uint32_t nrows, float* C, uint32_t ldc, float* work,
                                              uint64_t* bars) {
  static_assert(kN % 32 == 0 && (kN <= 128 || kN == 256) && kThreads == 256,
                "two warpgroups of 64 tokens; N a multiple of 32 up to 128, or 256");
  constexpr uint32_t kStage = wgmma_stage_floats(kN), kSlots = wgmma_slots(kN), kGroups = kN / 8;
  static_assert(kGroups <= 32, "one lane of warp 0 per group of 8 rows");
  constexpr uint32_t kStageBytes = (kGemmM + kN) * kGemmK * 2;
  const uint32_t t = threadIdx.x, wg = t / 128, lane = t % 32;
  const uint32_t chunks = (K + kGemmK - 1) / kGemmK;
  auto xs = [&](uint32_t st) { return reinterpret_cast<__nv_bfloat16*>(work + st * kStage); };
  auto ws = [&](uint32_t st) { return xs(st) + kGemmM * kGemmK; };
  // Lane g < kGroups of warp 0 copies row group g (groups past nrows: group 0 again, never stored).
  const __nv_bfloat16* w_src = row_ptr(lane < kGroups && 8 * lane < nrows ? 8 * lane : 0).at(0);
  if (t == 0) {
    for (uint32_t s = 0; s < kSlots; ++s) mbar_init(&bars[s], 1);
    mbar_init_fence();
  }
  // X was stored by other SMs through the generic proxy (seen here through the dependency
  // counters, after the barrier below); the TMA reads it through the async proxy.
  sync_consumers();
  if (t < 32) fence_proxy_async_global();
  auto load_stage = [&](uint32_t c) {
    if (t >= 32 || c >= chunks) return;
    const uint32_t st = c % kSlots;
    if (lane == 0) {
      mbar_expect_tx(&bars[st], kStageBytes);
      tma_load_2d(xs(st), x_map, int32_t(x_col0 + c * kGemmK), int32_t(x_row0), &bars[st]);
    }
    if (lane < kGroups) bulk_copy(ws(st) + lane * 8 * kGemmK, w_src + c * (kGemmK * kPageRows), 1024, &bars[st]);
  };

  float acc[kN / 2];
#pragma unroll
  for (uint32_t i = 0; i < kN / 2; ++i) acc[i] = 0;
#pragma unroll
  for (uint32_t c = 0; c + 1 < kSlots; ++c) load_stage(c);
  for (uint32_t c = 0; c < chunks; ++c) {
    const uint32_t st = c % kSlots;
    // A plain wait, without mbar_wait's watchdog: a trap reachable while this warpgroup's products
    // run makes ptxas wait for them before it (C7517), at every stage.
    while (!mbar_test(&bars[st], c / kSlots % 2)) {
    }
    if (c == 0) trace_phase(kPhaseInput);  // the pipeline filled (builds with MK_TRACE_PHASES)
    wgmma_stage_products<kN>(acc, xs(st), wg);
    wgmma_wait<1>();   // this warpgroup's products of stage c - 1 are done
    sync_consumers();  // everyone's: the slot of c - 1 takes stage c + kSlots - 1
    load_stage(c + kSlots - 1);
  }
  wgmma_wait<0>();
  sync_consumers();  // every warpgroup is done with the stages (and no copy is in flight): C may lie over them
  store_wgmma_acc<kN>(acc, C, ldc, mc, nrows);
}

// The TMA map of arena buffer `in` (KernelParams::act_maps), or nullptr.
__device__ __forceinline__ const void* act_map(const KernelParams& p, uint32_t in) {
  for (uint32_t i = 0; i < p.n_act_maps; ++i)
    if (p.act_map_in[i] == in) return static_cast<const char*>(p.act_maps) + i * 128;
  return nullptr;
}

// One pass, on whichever form the target has: on sm_90a fed by the TMA where X's buffer has a map
// (x_map: the pass's X from row x_row0 and column x_col0 on; `bars`: wgmma_slots(kN) mbarriers
// nobody else uses meanwhile) and K is whole stages (a stage's 1 KB weight copies would read past
// a row group's last block). The caller passes a map only where row_ptr's groups of 8 are the
// paged layout's (gemm_pass_tma). X: the same first element, rows ldx apart; K: the columns the
// pass multiplies (a split matvec's range: row_ptr(n).at(0) is its first).
template <uint32_t kN, class RowPtr>
__device__ __forceinline__ void gemm_pass(const __nv_bfloat16* X, uint32_t ldx, const void* x_map, uint32_t x_row0,
                                          uint32_t x_col0, uint32_t mc, uint32_t K, RowPtr row_ptr, uint32_t nrows,
                                          float* C, uint32_t ldc, float* work, uint64_t* bars) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  if (x_map && K % kGemmK == 0)
    gemm_pass_tma<kN>(x_map, x_row0, x_col0, mc, K, row_ptr, nrows, C, ldc, work, bars);
  else
    gemm_pass_wgmma<kN>(X, ldx, mc, K, row_ptr, nrows, C, ldc, work);
#else
  gemm_pass_mma<kN>(X, ldx, mc, K, row_ptr, nrows, C, ldc, work);
#endif
}

}  // namespace mk::cuda
