// The matvec family on the GPU: MatvecResidual, MatvecAct and LmHead (with its per-tile argmax).
// Decode tiles read their weights from the pipe's shared-memory pages; prefill tiles multiply all
// their tokens on the tensor cores (ops/mma_gemm.cuh), or, where that does not fit, stream weights
// with plain 16-byte loads, several rows per warp. Inputs (normalized if fused) in shared memory.
#pragma once

#include <type_traits>

#include "cuda/ops/mma_gemm.cuh"
#include "cuda/ops/weight_pipe.cuh"

namespace mk::cuda {

constexpr int kMC = 8;             // input rows per pass: the accumulators a lane keeps

constexpr int kRows = 4;           // weight rows a warp streams at once
// ... in a prefill tile of a single input row (the LM head: one row of logits): twice as many, so
// that a warp keeps twice the bytes in flight; the pass is bound by them (one 16-byte load per lane
// and row in flight: 32 KB an SM at kRows, where the 525 MB head of the 1B model took 224 us; 195
// with 8, H200, traced).
constexpr int kRowsOneInput = 8;

// The residual a decode MatvecResidual tile with tagged outputs adds to (kFlagTagOut), read when
// the tile starts, beside its input row, rather than at its end: the tile stores x + y whole (a
// reduction at L2 cannot carry a tag), and a load at the end would put an L2 round trip on the
// critical path. Rows [first, first + n) are staged in `rows`; others are read when stored.
struct StagedResidual {
  const float* rows = nullptr;
  uint32_t first = 0, n = 0;
};

// Adds v to the fp32 value at `at` (global memory) at L2, without an answer. Named through the
// global window: a generic atomicAdd compiles to a test for shared memory with a CAS loop beside
// the atomic.
__device__ __forceinline__ void red_add(float* at, float v) {
  asm volatile("red.global.add.f32 [%0], %1;" ::"l"(__cvta_generic_to_global(at)), "f"(v) : "memory");
}
// The same for the pair at `at` (8-byte aligned): one vector reduction on sm_90 onwards.
__device__ __forceinline__ void red_add2(float* at, float v0, float v1) {
#if __CUDA_ARCH__ >= 900
  asm volatile("red.global.add.v2.f32 [%0], {%1, %2};" ::"l"(__cvta_generic_to_global(at)), "f"(v0), "f"(v1)
               : "memory");
#else
  red_add(at, v0), red_add(at + 1, v1);
#endif
}

// Row r's output for input row m, from its dot products (`gate`: the gate row's, when gated):
// the residual add, the activation, or the logit (tracked in the caller's running best). Only
// `lead` threads write (a warp's lane 0 when every lane holds the sums).
__device__ __forceinline__ void matvec_store(const Instruction& ins, const KernelParams& p, uint32_t m, uint32_t r,
                                             float up, float gate, float& best, uint32_t& best_idx,
                                             bool lead = threadIdx.x % 32 == 0, StagedResidual staged = {}) {
  const MatvecArgs& a = ins.a.mv;
  const Opcode op = static_cast<Opcode>(ins.opcode);
  const __nv_bfloat16* bias = weight(p, a.bias);
  const float y = up + (bias ? bf(bias[r]) : 0.0f);
  float* out = p.arena + a.out + size_t(m) * a.out_dim + r;
  if (op == Opcode::MatvecResidual) {
    // A reduction (red.global.add) rather than load, add, store: the same single fp32 add (this tile
    // is the element's only writer in the op), without a round trip to memory on the critical path.
    // A tensor-parallel partial is stored, for AllReduce. Tagged outputs add to the staged residual.
    if (lead) {
      if (ins.flags & kFlagStore) {
        *out = y;
      } else if (ins.flags & kFlagTagOut) {
        const float x = r - staged.first < staged.n ? staged.rows[r - staged.first] : ld_act_tagged(out, residual_tag(ins));
        *out = with_tag(x + y, output_tag(ins));
      } else {
        red_add(out, y);
      }
    }
  } else if (op == Opcode::MatvecAct) {
    const Activation act = static_cast<Activation>(p.dims.activation);
    const __nv_bfloat16* gate_bias = weight(p, a.gate_bias);
    const float v = a.gate != kNone ? activate(gate + (gate_bias ? bf(gate_bias[r]) : 0.0f), act) * y : activate(y, act);
    if (lead) store_act(p, a.out, size_t(m) * a.out_dim + r, with_tag(v, output_tag(ins)), ins.flags & kFlagBf16Out);
  } else {
    if (lead) *out = y;
    if (y > best) best = y, best_idx = r;  // rows rise within a warp: first max wins
  }
}

// One pass of a matvec tile over `mc` (<= MC) input rows already in shared memory at `x`, with plain
// loads (prefill, or the pipe off), R weight rows per warp at a time. Gated (MatvecAct with a gate)
// passes take R/2 output rows at a time: up rows, then gate rows.
template <int MC, int R>
__device__ void matvec_pass(const Instruction& ins, const KernelParams& p, uint32_t r_begin, uint32_t r_end,
                            const float* x, uint32_t m0, uint32_t mc, float best[kMC], uint32_t best_idx[kMC]) {
  const MatvecArgs& a = ins.a.mv;
  const int warp = threadIdx.x / 32;
  const uint32_t K = a.in_dim;
  const __nv_bfloat16* W = weight(p, a.weight);
  const __nv_bfloat16* G = weight(p, a.gate);
  const uint32_t per = G ? R / 2 : R;
  for (uint32_t r0 = r_begin + warp * per; r0 < r_end; r0 += kWarps * per) {
    const uint32_t n_out = r_end - r0 < per ? r_end - r0 : per;
    PagedRow rows[R];
#pragma unroll
    for (int i = 0; i < R; ++i) {
      // Past the tile's end a slot repeats row r0: a few wasted loads beat a run-time index.
      const uint32_t r = r0 + (i % per < n_out ? i % per : 0);
      rows[i] = paged_row(G && i >= int(per) ? G : W, r, K);
    }
    float acc[R][MC];
    warp_dot_rows<R, MC>(rows, R, x, K, mc, acc);
#pragma unroll
    for (int i = 0; i < R; ++i) {
      if (i >= int(per) || i >= int(n_out)) break;
#pragma unroll
      for (int m = 0; m < MC; ++m) {
        if (m >= int(mc)) break;
        matvec_store(ins, p, m0 + m, r0 + i, acc[i][m], G ? acc[R / 2 + i][m] : 0.0f, best[m], best_idx[m]);
      }
    }
  }
}

// The epilogue of a GEMM pass whose outputs carry no tags (prefill's), from C in shared memory
// ([mc][ldc], a gated pass's gate rows nr further): matvec_store's elementwise part, two adjacent
// outputs a thread (8-byte stores, reductions and C reads; a warp covers 64 outputs of a token,
// conflict-free). r0, nr and out_dim even. Traced on 512 tokens (H200), matvec_store's loop took
// 13 us of a 50 us gate/up tile and 8.6 of o_proj's 32.
// A split matvec's tile (MatvecArgs::k_splits) stores its range's product to its slice of
// a.partial instead (the bias in range 0's).
//
// What the loop does with a pair is fixed per tile (PairOut, the activation): one loop per kind,
// with no branch inside, each lane's bias pair loaded once for all its tokens, and kPairTokens
// tokens' C reads issued before their math. The one loop for every kind took 14.4 us of a 48 us
// Qwen2.5-1.5B gate/up tile (128 tokens by 128 outputs, H100, session 32): 800 cycles a pair of a
// warp, several times its instructions' latency.
enum class PairOut : uint8_t { Store, Reduce, Act, GatedAct };
constexpr uint32_t kPairTokens = 4;

// SiLU with the fast division: x / (1 + e^-x) without the IEEE division's checks and slow path
// (the exact form's error is already that of __expf).
template <Activation kAct>
__device__ __forceinline__ float activate_fast(float x) {
  if constexpr (kAct == Activation::Silu) {
    return __fdividef(x, 1.0f + __expf(-x));
  } else {
    return activate(x, kAct);
  }
}

__device__ __forceinline__ float2 bias_pair(const __nv_bfloat16* b, uint32_t r) {
  return b ? __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(b + r)) : make_float2(0.0f, 0.0f);
}

template <PairOut kOut, Activation kAct>
__device__ void store_pairs_as(const KernelParams& p, const float* C, uint32_t ldc, uint32_t m0, uint32_t mc,
                               uint32_t r0, uint32_t nr, const __nv_bfloat16* bias, const __nv_bfloat16* gate_bias,
                               uint32_t out, uint32_t out_dim, bool bf16_out) {
  const uint32_t lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (uint32_t n = 2 * lane; n < nr; n += 64) {
    const uint32_t r = r0 + n;
    const float2 b = bias_pair(bias, r);
    const float2 gb = kOut == PairOut::GatedAct ? bias_pair(gate_bias, r) : make_float2(0.0f, 0.0f);
    for (uint32_t m = warp; m < mc; m += kPairTokens * kWarps) {
      float2 c[kPairTokens], g[kPairTokens];
#pragma unroll
      for (uint32_t u = 0; u < kPairTokens; ++u) {
        const uint32_t mu = m + u * kWarps < mc ? m + u * kWarps : m;
        c[u] = *reinterpret_cast<const float2*>(C + mu * ldc + n);
        if constexpr (kOut == PairOut::GatedAct) g[u] = *reinterpret_cast<const float2*>(C + mu * ldc + nr + n);
      }
#pragma unroll
      for (uint32_t u = 0; u < kPairTokens; ++u) {
        if (m + u * kWarps >= mc) break;
        float y0 = c[u].x + b.x, y1 = c[u].y + b.y;
        const size_t at = size_t(m0 + m + u * kWarps) * out_dim + r;
        if constexpr (kOut == PairOut::GatedAct) {
          y0 *= activate_fast<kAct>(g[u].x + gb.x);
          y1 *= activate_fast<kAct>(g[u].y + gb.y);
          store_act2(p, out, at, y0, y1, bf16_out);
        } else if constexpr (kOut == PairOut::Act) {
          store_act2(p, out, at, activate_fast<kAct>(y0), activate_fast<kAct>(y1), bf16_out);
        } else if constexpr (kOut == PairOut::Reduce) {
          red_add2(p.arena + out + at, y0, y1);
        } else {
          *reinterpret_cast<float2*>(p.arena + out + at) = make_float2(y0, y1);
        }
      }
    }
  }
}

__device__ __noinline__ void gemm_store_pairs(const Instruction& ins, const KernelParams& p, const float* C, uint32_t ldc,
                                 uint32_t m0, uint32_t mc, uint32_t r0, uint32_t nr, bool gated, uint32_t k_split) {
  const MatvecArgs& a = ins.a.mv;
  const Opcode op = static_cast<Opcode>(ins.opcode);
  const bool split = a.k_splits > 1;
  const __nv_bfloat16* bias = k_split == 0 ? weight(p, a.bias) : nullptr;
  const __nv_bfloat16* gate_bias = weight(p, a.gate_bias);
  const bool bf16_out = ins.flags & kFlagBf16Out;
  const uint32_t out = split ? a.partial + k_split * a.rows * a.out_dim : a.out;
  auto run = [&](auto kind, auto act) {
    store_pairs_as<decltype(kind)::value, decltype(act)::value>(p, C, ldc, m0, mc, r0, nr, bias, gate_bias, out,
                                                                 a.out_dim, bf16_out);
  };
  using Silu = std::integral_constant<Activation, Activation::Silu>;
  using Gelu = std::integral_constant<Activation, Activation::GeluTanh>;
  if (op == Opcode::MatvecAct) {
    const bool silu = static_cast<Activation>(p.dims.activation) == Activation::Silu;
    if (gated) {
      using K = std::integral_constant<PairOut, PairOut::GatedAct>;
      silu ? run(K{}, Silu{}) : run(K{}, Gelu{});
    } else {
      using K = std::integral_constant<PairOut, PairOut::Act>;
      silu ? run(K{}, Silu{}) : run(K{}, Gelu{});
    }
  } else if (op == Opcode::MatvecResidual && !(ins.flags & kFlagStore) && !split) {
    run(std::integral_constant<PairOut, PairOut::Reduce>{}, Silu{});
  } else {
    run(std::integral_constant<PairOut, PairOut::Store>{}, Silu{});
  }
}

// A prefill's LM head (one row of logits) streams its weight rows through the ops' shared memory:
// whole groups of 8 rows (contiguous in the paged layout) copied by cp.async, kLmStages - 1 of them
// in flight (96 KB at Llama-3.2-1B's K = 2048), where the plain pass kept 8 rows a warp of 16-byte
// loads in flight and drew ~2.7 TB/s (192 us for the 1B's 525 MB, H200, session 18; decode's
// weight pipe streams them in 117). A step of a warp reads 4 of a group's 8-column blocks for all
// 8 rows (512 contiguous bytes: no bank conflicts), lane l for row l % 8; the warps' sums of a
// group meet in shared memory (two buffers, so the next group's need no extra barrier).
constexpr uint32_t kLmStages = 4;

__device__ __forceinline__ bool lm_head_streamed_fits(const KernelParams& p, uint32_t K) {
  return K % 8 == 0 && p.smem_floats >= kSmemHead + K + 2 * kWarps * kPageRows + kLmStages * kPageRows * K / 2;
}

__device__ void lm_head_streamed(const Instruction& ins, const KernelParams& p, float* smem, const TokenSegments& s) {
  const MatvecArgs& a = ins.a.mv;
  const uint32_t K = a.in_dim, warp = threadIdx.x / 32, lane = threadIdx.x % 32, row = lane % kPageRows;
  float* x = smem + kSmemHead;                   // the normalized input row, [K]
  float* red = x + K;                            // [2][kWarps][kPageRows]
  // 16-byte aligned: kSmemHead and K are multiples of 8 floats, red 2 * 8 * 8.
  __nv_bfloat16* ring = reinterpret_cast<__nv_bfloat16*>(red + 2 * kWarps * kPageRows);
  const uint32_t group = kPageRows * K;          // bf16 elements of a group of rows, contiguous
  const __nv_bfloat16* W = weight(p, a.weight) + size_t(s.u_begin / kPageRows) * group;
  const uint32_t groups = (s.u_end - s.u_begin + kPageRows - 1) / kPageRows;  // the last padded with zero rows
  auto issue = [&](uint32_t g) {  // always one commit group, so that wait_group counts groups
    if (g < groups) {
      const __nv_bfloat16* src = W + size_t(g) * group;
      __nv_bfloat16* dst = ring + (g % kLmStages) * group;
      for (uint32_t i = threadIdx.x; i < group / 8; i += kThreads) cp_async16(dst + 8 * i, src + 8 * i);
    }
    asm volatile("cp.async.commit_group;" ::: "memory");
  };
  for (uint32_t g = 0; g + 1 < kLmStages; ++g) issue(g);  // the weights do not wait for the input row
  load_act_rows(p, x, a.in, a.in_row0 + s.m_begin, 1, K, a.norm, ins.flags & kFlagBf16In, smem, input_tag(ins));
  float best = -INFINITY;
  uint32_t best_idx = s.u_begin;
  for (uint32_t g = 0; g < groups; ++g) {
    // Into the slot of group g - 1, whose readers all passed the second barrier of the last step.
    issue(g + kLmStages - 1);
    asm volatile("cp.async.wait_group %0;" ::"n"(kLmStages - 1) : "memory");
    sync_consumers();  // every thread's copies of group g have landed
    const __nv_bfloat16* rows = ring + (g % kLmStages) * group;
    float sum = 0;
    for (uint32_t b = warp * 4 + lane / kPageRows; b < K / 8; b += kWarps * 4) {
      float w[8];
      unpack8(*reinterpret_cast<const uint4*>(rows + b * 8 * kPageRows + row * 8), w);
      const float4 x0 = *reinterpret_cast<const float4*>(x + b * 8), x1 = *reinterpret_cast<const float4*>(x + b * 8 + 4);
      sum += w[0] * x0.x + w[1] * x0.y + w[2] * x0.z + w[3] * x0.w + w[4] * x1.x + w[5] * x1.y + w[6] * x1.z + w[7] * x1.w;
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 8);
    sum += __shfl_xor_sync(0xffffffffu, sum, 16);
    float* sums = red + (g % 2) * kWarps * kPageRows;
    if (lane < kPageRows) sums[warp * kPageRows + lane] = sum;
    sync_consumers();
    if (threadIdx.x < kPageRows) {  // thread t: row t of every group, so its rows rise
      float y = 0;
      for (uint32_t w = 0; w < kWarps; ++w) y += sums[w * kPageRows + threadIdx.x];
      const uint32_t r = s.u_begin + g * kPageRows + threadIdx.x;
      if (r < s.u_end) matvec_store(ins, p, s.m_begin, r, y, 0.0f, best, best_idx, true);
    }
  }
  asm volatile("cp.async.wait_group 0;" ::: "memory");  // none left in flight over the next op's memory
  // The tile's (max, argmax) from the 8 threads' (the first maximum wins ties, as torch.argmax).
  float* best_v = smem;
  uint32_t* best_i = reinterpret_cast<uint32_t*>(smem + kPageRows);
  if (threadIdx.x < kPageRows) best_v[threadIdx.x] = best, best_i[threadIdx.x] = best_idx;
  sync_consumers();
  if (threadIdx.x == 0) {
    float v = best_v[0];
    uint32_t i = best_i[0];
    for (uint32_t t = 1; t < kPageRows; ++t)
      if (best_v[t] > v || (best_v[t] == v && best_i[t] < i)) v = best_v[t], i = best_i[t];
    float* part = p.arena + a.partial + (size_t(ins.tile_index) * a.rows + s.m_begin) * 2;
    part[0] = v;
    part[1] = __uint_as_float(i);
  }
  sync_consumers();
}

// A split matvec's segment where no tensor-core pass takes it (a token block of fewer than
// kGemmMinTokens tokens, or no pass fits in shared memory): its range's product into its slice of
// a.partial (the bias in range 0's), as gemm_store_pairs leaves it; a warp per (token, row), lanes
// along the range. Such blocks are small and rare, so plain loads.
__device__ void split_on_cuda_cores(const Instruction& ins, const KernelParams& p, const TokenSegments& s) {
  const MatvecArgs& a = ins.a.mv;
  uint32_t k0, k1;
  k_range(a.in_dim, a.k_splits, s.k_split, &k0, &k1);
  const __nv_bfloat16* W = weight(p, a.weight);
  const __nv_bfloat16* bias = s.k_split == 0 ? weight(p, a.bias) : nullptr;
  const bool bf16_in = ins.flags & kFlagBf16In;
  const uint32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32, rows = s.u_end - s.u_begin;
  for (uint32_t e = warp; e < (s.m_end - s.m_begin) * rows; e += kWarps) {
    const uint32_t m = s.m_begin + e / rows, r = s.u_begin + e % rows;
    const PagedRow w = paged_row(W, r, a.in_dim);
    const size_t x0 = size_t(a.in_row0 + m) * a.in_dim;
    float sum = 0;
    for (uint32_t k = k0 + lane; k < k1; k += 32)
      sum += bf(*w.at(k)) * (bf16_in ? bf(bf16_act(p, a.in)[x0 + k]) : p.arena[a.in + x0 + k]);
    sum = warp_sum(sum);
    if (lane == 0) p.arena[a.partial + (size_t(s.k_split) * a.rows + m) * a.out_dim + r] = sum + (bias ? bf(bias[r]) : 0.0f);
  }
}

// A prefill tile on the tensor cores: passes of kGemmM tokens by kN weight rows (a gated tile's
// pass takes half up rows, half gate rows), each finished by an elementwise epilogue. Not LmHead:
// its per-tile argmax follows warps, and a prefill computes one row of logits.
template <uint32_t kN>
__device__ void matvec_gemm(const Instruction& ins, const KernelParams& p, float* smem, const TokenSegments& s,
                            uint64_t* bars) {
  const MatvecArgs& a = ins.a.mv;
  const uint32_t K = a.in_dim;
  const __nv_bfloat16* W = weight(p, a.weight);
  const __nv_bfloat16* G = weight(p, a.gate);
  float* work = smem + kSmemHead;
  float* C = work;  // [kGemmM][gemm_ldc(kN)], over the pass's stages
  constexpr uint32_t ldc = gemm_ldc(kN);
  const uint32_t per = G ? kN / 2 : kN;
  const void* x_map = act_map(p, a.in);
  // A split matvec's tile multiplies its range of the input (k_range), stored apart (the Norm that
  // follows adds the ranges' products to the outputs).
  uint32_t k0, k1;
  k_range(K, a.k_splits, s.k_split, &k0, &k1);
  // Tagged outputs (decode's handoff) and odd offsets take matvec_store, element by element (never
  // a split matvec's: its tiles are whole groups of 8 rows, graph/decoder.cpp).
  const bool pairs = !(ins.flags & kFlagTagOut) && a.out_dim % 2 == 0 && s.u_begin % 2 == 0;
  for (uint32_t m0 = s.m_begin; m0 < s.m_end; m0 += kGemmM) {
    const uint32_t mc = s.m_end - m0 < kGemmM ? s.m_end - m0 : kGemmM;
    for (uint32_t r0 = s.u_begin; r0 < s.u_end; r0 += per) {
      const uint32_t nr = s.u_end - r0 < per ? s.u_end - r0 : per;
      // The TMA form copies weight rows by whole groups of 8: the pass's first row, and a gated
      // pass's first gate row, must start one.
      const bool groups = r0 % 8 == 0 && (nr % 8 == 0 || !G);
      gemm_pass<kN>(bf16_act(p, a.in) + size_t(a.in_row0 + m0) * K + k0, K, groups ? x_map : nullptr,
                    a.in_row0 + m0, k0, mc, k1 - k0,
                    [&](uint32_t n) {
                      return PagedRowFrom{n < nr ? paged_row(W, r0 + n, K) : paged_row(G, r0 + n - nr, K), k0};
                    },
                    G ? 2 * nr : nr, C, ldc, work, bars);
      trace_phase(kPhaseWeights);  // the products done: what follows is the epilogue
      if (pairs && nr % 2 == 0) {
        gemm_store_pairs(ins, p, C, ldc, m0, mc, r0, nr, G != nullptr, s.k_split);
      } else {
        float best = 0;  // unused: not LmHead
        uint32_t best_idx = 0;
        for (uint32_t e = threadIdx.x; e < mc * nr; e += kThreads) {
          const uint32_t m = e / nr, n = e % nr;
          matvec_store(ins, p, m0 + m, r0 + n, C[m * ldc + n], G ? C[m * ldc + nr + n] : 0.0f, best, best_idx, true);
        }
      }
      sync_consumers();  // C is overwritten by the next pass
    }
  }
}

// One segment of a tile: output rows [s.u_begin, s.u_end) for tokens [s.m_begin, s.m_end).
template <bool kMma, class Spec>
__device__ void matvec_segment(const Instruction& ins, const KernelParams& p, float* smem, Pipe& pipe,
                               const TokenSegments& s) {
  const MatvecArgs& a = ins.a.mv;
  PipeSpan span;
  // Only decode programs pipe (one token), and only the decode build runs them: the prefill build
  // carries no pipe code.
  const bool piped = !kMma && pipe_span(ins, p, &span);  // then a.rows == 1: one pass
  if (kMma && static_cast<Opcode>(ins.opcode) != Opcode::LmHead && gemm_fits(ins, s.m_end - s.m_begin, a.in_dim, a.norm)) {
    // Gated tiles (up and gate rows) take a wide pass where it fits, on sm_90a the widest for tiles
    // of 128 outputs or more; so do other tiles of 256 rows (a split projection's) or 128 (C lies
    // over the stages). Gated tiles of 32 outputs or fewer (a short last wave's pieces, the
    // scheduler's tile_ranges) take the narrow one.
    const uint32_t rows = (s.u_end - s.u_begin) * (a.gate != kNone ? 2 : 1);
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    if (rows >= kGemmWgmmaWideN && p.smem_floats >= kSmemHead + gemm_work_floats(kGemmWgmmaWideN)) {
      matvec_gemm<kGemmWgmmaWideN>(ins, p, smem, s, pipe.full);
      return;
    }
#endif
    if ((a.gate != kNone ? rows > kGemmN : rows >= kGemmWideN) && p.smem_floats >= kSmemHead + gemm_work_floats(kGemmWideN)) {
      matvec_gemm<kGemmWideN>(ins, p, smem, s, pipe.full);
      return;
    }
    if (p.smem_floats >= kSmemHead + gemm_work_floats(kGemmN)) {
      matvec_gemm<kGemmN>(ins, p, smem, s, pipe.full);
      return;
    }
  }
  if constexpr (kMma) {
    if (static_cast<Opcode>(ins.opcode) == Opcode::LmHead && s.m_end - s.m_begin == 1 && s.u_begin % kPageRows == 0 &&
        lm_head_streamed_fits(p, a.in_dim)) {
      lm_head_streamed(ins, p, smem, s);
      return;
    }
  }
  if constexpr (kMma) {
    if (a.k_splits > 1) {
      split_on_cuda_cores(ins, p, s);
      return;
    }
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* scratch = smem;
  float* best_v = smem + 64;          // [kWarps][kMC]
  uint32_t* best_i = reinterpret_cast<uint32_t*>(smem + 128);
  float* x = smem + kSmemHead;
  const uint32_t K = a.in_dim;
  const uint32_t fit = (p.smem_floats - kSmemHead) / K;
  const uint32_t chunk = fit < kMC ? fit : kMC;  // >= 1: checked on the host
  for (uint32_t m0 = s.m_begin; m0 < s.m_end; m0 += chunk) {
    const uint32_t mc = s.m_end - m0 < chunk ? s.m_end - m0 : chunk;
    float best[kMC];
    uint32_t best_idx[kMC];
#pragma unroll
    for (int m = 0; m < kMC; ++m) best[m] = -INFINITY, best_idx[m] = s.u_begin;
    if (piped) {  // decode: fp32 input
      // A tagged residual tile's rows, one a thread, asked for before the input row so that both
      // round trips overlap (StagedResidual); static shared memory, past the ring's reach.
      __shared__ float residual_rows[kThreads];
      const bool stage = static_cast<Opcode>(ins.opcode) == Opcode::MatvecResidual && (ins.flags & kFlagTagOut) && !(ins.flags & kFlagStore);
      const uint32_t n_staged = stage ? min(s.u_end - s.u_begin, uint32_t(kThreads)) : 0u;
      const float* residual_at = p.arena + a.out + size_t(m0) * a.out_dim + s.u_begin + threadIdx.x;
      float residual = threadIdx.x < n_staged ? ld_act(residual_at) : 0.0f;
      with_width<Spec>(K, [&](auto kK) {
        load_rows<kK(), true>(p, x, p.arena + a.in + size_t(a.in_row0 + m0) * K, mc, K, a.norm, scratch, input_tag(ins));
        trace_phase(kPhaseInput);
        // Seen by the epilogue's threads after pipe_rows' barrier at the end of their batch.
        if (threadIdx.x < n_staged) {
          if (residual_tag(ins) != kNoTag && !has_tag(residual, residual_tag(ins)))
            residual = ld_act_tagged(residual_at, residual_tag(ins));
          residual_rows[threadIdx.x] = residual;
        }
        const RedSpace red = pipe_red_space(smem, p, kSmemHead + K);
        const StagedResidual staged{residual_rows, s.u_begin, n_staged};
        pipe_rows<kK()>(pipe, span, x, red.at, red.floats, [&](uint32_t g, uint32_t r, float up, float gate) {
          matvec_store(ins, p, m0, s.u_begin + g * kPageRows + r, up, gate, best[0], best_idx[0], true, staged);
        });
        trace_phase(kPhaseWeights);
      });
    } else {
      load_act_rows(p, x, a.in, a.in_row0 + m0, mc, K, a.norm, kMma && (ins.flags & kFlagBf16In), scratch,
                    input_tag(ins));
      if (mc == 1)  // a single-row instantiation keeps the accumulators few; the decode build's as it was
        matvec_pass<1, kMma ? kRowsOneInput : kRows>(ins, p, s.u_begin, s.u_end, x, m0, mc, best, best_idx);
      else
        matvec_pass<kMC, kRows>(ins, p, s.u_begin, s.u_end, x, m0, mc, best, best_idx);
    }
    if (static_cast<Opcode>(ins.opcode) == Opcode::LmHead) {
      // The pipe's epilogue runs a row per thread: each lane has its own best (the plain passes'
      // lanes agree on theirs).
#pragma unroll
      for (int m = 0; m < kMC; ++m) warp_argmax(best[m], best_idx[m]);
      if (lane == 0)
        for (int m = 0; m < kMC; ++m) best_v[warp * kMC + m] = best[m], best_i[warp * kMC + m] = best_idx[m];
      sync_consumers();
      if (threadIdx.x < mc) {
        const int m = threadIdx.x;
        float v = best_v[m];
        uint32_t i = best_i[m];
        for (int w = 1; w < kWarps; ++w) {
          const float vw = best_v[w * kMC + m];
          const uint32_t iw = best_i[w * kMC + m];
          if (vw > v || (vw == v && iw < i)) v = vw, i = iw;
        }
        float* part = p.arena + a.partial + (size_t(ins.tile_index) * a.rows + m0 + m) * 2;
        part[0] = v;
        part[1] = __uint_as_float(i);
      }
    }
    sync_consumers();  // x is overwritten by the next pass
  }
}

template <bool kMma, class Spec>
__device__ void run_matvec(const Instruction& ins, const KernelParams& p, float* smem, Pipe& pipe) {
  const MatvecArgs& a = ins.a.mv;
  for_each_token_segment<kMma>(TokenSegments(ins.tile_begin, ins.tile_end, a.out_dim, a.token_block, a.rows),
                               [&](const TokenSegments& s) { matvec_segment<kMma, Spec>(ins, p, smem, pipe, s); });
}

}  // namespace mk::cuda
