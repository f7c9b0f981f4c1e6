// Device-side building blocks shared by the megakernel's ops: loads that bypass or skip the L1,
// bf16 conversion, warp and block reductions, and the fused input normalization.
#pragma once

#include <cuda_bf16.h>
#include <stdint.h>

#include "cuda/half_block.h"
#include "cuda/kernel_params.h"
#include "cuda/mbarrier.cuh"
#include "cuda/paged_weights.h"
#include "cuda/spec.h"

namespace mk::cuda {

// A block is kThreads consumer threads (kWarps warps) that run the instructions, plus a producer
// warpgroup whose first warp streams weights into shared memory ahead of them (ops/weight_pipe.cuh)
// and whose other three exit at once.
constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
// Why a whole warpgroup for one producer warp: with 9 warps a block (or 12), one of the SM's 4
// schedulers holds 3, and ptxas caps every thread at 168 registers (16384 a scheduler / 96
// threads), where the decode consumers spilled (108 / 136 bytes, sm_90a). On sm_90a and sm_100a
// the producer warpgroup gives registers back and the consumers take them (setmaxnreg,
// hand_registers_to_consumers below): per scheduler 2 consumer warps at kConsumerRegs and one
// producer-group warp at kProducerRegs, and the spills fall to 24 / 56 bytes. Decode 3-5% faster
// (H200, 1B shape, A/B).
// setmaxnreg works on warpgroups, hence 128 producer threads; elsewhere the 3 idle warps cost nothing.
constexpr int kProducerThreads = 128;
constexpr int kBlockThreads = kThreads + kProducerThreads;
constexpr int kProducerRegs = 40, kConsumerRegs = 232;
static_assert((2 * kConsumerRegs + kProducerRegs) * 32 <= 16384, "a scheduler's register file");
// Once, after the block's one __syncthreads(): on sm_90a and sm_100a the producer warpgroup gives
// registers back and the consumer warpgroups take them. Every warp of a warpgroup executes its
// setmaxnreg (.aligned); the consumers' one waits until the producer group's registers are free.
__device__ __forceinline__ void hand_registers_to_consumers() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL) || defined(__CUDA_ARCH_FEAT_SM100_ALL)
  if (threadIdx.x >= kThreads)
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(kProducerRegs) : "memory");
  else
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kConsumerRegs) : "memory");
#endif
}

// Floats at the start of the ops' shared memory kept for reductions and scratch; an op's own
// buffers start after them.
constexpr uint32_t kSmemHead = 256;

// The consumers' barrier. Never __syncthreads() in an op: the producer warp runs its own loop
// and would never arrive (or has already exited).
__device__ __forceinline__ void sync_consumers() { asm volatile("bar.sync 1, %0;" ::"n"(kThreads) : "memory"); }

// Calls f(segment) for each token segment of a tile (TokenSegments, isa.h). Decode builds (kMma
// false) never see token blocks: one segment, and no loop state kept live across the op.
template <bool kMma, class F>
__device__ __forceinline__ void for_each_token_segment(TokenSegments s, F&& f) {
  if constexpr (!kMma) {
    // Decode: one token, so the tile is one segment of block 0 and K range 0 (without next()'s
    // divisions by the unit and block counts).
    s.u_begin = s.u, s.u_end = s.tile_end, s.m_begin = 0, s.m_end = s.M, s.k_split = 0;
    f(s);
  } else {
    while (s.next()) f(s);
  }
}

// Nanoseconds of the GPU's global timer: the watchdogs' clock and the trace's.
__device__ __forceinline__ uint64_t globaltimer() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// The watchdog of the waits that only a bug can make endless (a page or a tagged value that never
// arrives): past 20 s since `start`, trap rather than hang the GPU.
__device__ __forceinline__ void trap_if_stuck(uint64_t start) {
  if (globaltimer() - start > 20'000'000'000ull) __trap();
}

// MK_TRACE_PHASES builds: the current instruction's row of phase stamps (thread 0 sets it before
// each instruction, megakernel.cuh; nullptr when not tracing), and thread 0's stamps into it.
#if MK_TRACE_PHASES
__device__ __forceinline__ uint64_t*& phase_row() {
  __shared__ uint64_t* row;
  return row;
}
#endif
// When phase k of the current instruction ended.
__device__ __forceinline__ void trace_phase(uint32_t k) {
#if MK_TRACE_PHASES
  if (threadIdx.x == 0 && phase_row()) phase_row()[k] = globaltimer();
#endif
}
// A count for the current instruction in slot k.
__device__ __forceinline__ void trace_count(uint32_t k, uint64_t value) {
#if MK_TRACE_PHASES
  if (threadIdx.x == 0 && phase_row()) phase_row()[k] = value;
#endif
}

// Activations are written by other SMs during the same launch, and L1 is not coherent: read them
// at L2 (ld.global.cg) so a line cached earlier in the launch is never served stale.
__device__ __forceinline__ float ld_act(const float* p) { return __ldcg(p); }

// Tagged activations (the fence-free decode handoff, kFlagTagOut in isa.h): a value stored with
// its two lowest mantissa bits replaced by its write's tag (a relative change below 2^-21).
constexpr uint32_t kNoTag = ~0u;  // a buffer read or written without tags
__device__ __forceinline__ float with_tag(float v, uint32_t tag) {
  return tag == kNoTag ? v : __uint_as_float((__float_as_uint(v) & ~3u) | tag);
}
__device__ __forceinline__ bool has_tag(float v, uint32_t tag) {
#if MK_UNSAFE_NO_WAITS
  return true;  // a timing-only build: no reader waits for its writer (CMakeLists.txt)
#else
  return (__float_as_uint(v) & 3u) == tag;
#endif
}
// The tags an instruction's input row and residual carry (kFlagCheckIn, kFlagCheckRes), and the
// one its outputs take (kFlagTagOut); kNoTag where there are none.
__device__ __forceinline__ uint32_t input_tag(const Instruction& ins) {
  return ins.flags & kFlagCheckIn ? flag_tag(ins.flags, kTagInShift) : kNoTag;
}
__device__ __forceinline__ uint32_t residual_tag(const Instruction& ins) {
  return ins.flags & kFlagCheckRes ? flag_tag(ins.flags, kTagResShift) : kNoTag;
}
__device__ __forceinline__ uint32_t output_tag(const Instruction& ins) {
  return ins.flags & kFlagTagOut ? flag_tag(ins.flags, kTagOutShift) : kNoTag;
}
// One activation word read at L2, relaxed: no stale L1 copy, no ordering asked for.
__device__ __forceinline__ float ld_act_relaxed(const float* p) {
  float v;
  asm volatile("ld.relaxed.gpu.global.f32 %0, [%1];" : "=f"(v) : "l"(p) : "memory");
  return v;
}
// The retry loop out of line: it is rare, and inlined into every epilogue it grew the binary.
__device__ __noinline__ float ld_act_await_tag(const float* p, uint32_t tag) {
  float v;
  const uint64_t start = globaltimer();
  while (!has_tag(v = ld_act_relaxed(p), tag)) trap_if_stuck(start);
  return v;
}
// An activation read at L2 until it carries `tag`: its writer signalled without a fence, so its
// store may still be on the way (what is there meanwhile is the buffer's previous write, whose tag
// differs). One that never arrives is a bug in the tags: trap rather than hang the GPU.
__device__ __forceinline__ float ld_act_tagged(const float* p, uint32_t tag) {
  const float v = ld_act_relaxed(p);
  return tag == kNoTag || has_tag(v, tag) ? v : ld_act_await_tag(p, tag);
}
// Re-reads the kN floats copied from src to dst (this thread's own, 16-byte aligned) until all
// carry `tag`: all of them at once, in one round trip a try (word by word, a block written late
// cost up to kN round trips one after another). Out of line: rare, and inlined into every load of
// an input row it grew the binary.
template <uint32_t kN>
__device__ __noinline__ void await_tags_slow(float* dst, const float* src, uint32_t tag) {
  const uint64_t start = globaltimer();
  for (;;) {
    float4 v[kN / 4];
#pragma unroll
    for (uint32_t j = 0; j < kN / 4; ++j)
      asm volatile("ld.relaxed.gpu.global.v4.f32 {%0,%1,%2,%3}, [%4];"
                   : "=f"(v[j].x), "=f"(v[j].y), "=f"(v[j].z), "=f"(v[j].w)
                   : "l"(src + 4 * j)
                   : "memory");
    bool ok = true;
#pragma unroll
    for (uint32_t j = 0; j < kN / 4; ++j) {
      reinterpret_cast<float4*>(dst)[j] = v[j];
      ok &= has_tag(v[j].x, tag) && has_tag(v[j].y, tag) && has_tag(v[j].z, tag) && has_tag(v[j].w, tag);
    }
    if (ok) return;
    trap_if_stuck(start);
  }
}
template <uint32_t kN>
__device__ __forceinline__ void await_tags(float* dst, const float* src, uint32_t tag) {
  static_assert(kN % 4 == 0, "whole 16-byte words");
  if (tag == kNoTag) return;
  bool ok = true;
#pragma unroll
  for (uint32_t i = 0; i < kN; ++i) ok &= has_tag(dst[i], tag);
  if (!ok) await_tags_slow<kN>(dst, src, tag);
}

// Weights never change during a launch (the non-coherent path is safe), and in the paged layout a
// row's 16-byte pieces lie 128 bytes apart with the group's other rows between them: a warp reading
// consecutive rows touches each 32-byte sector twice, so the loads allocate in L1 and the second
// touch hits there (with L1::no_allocate the prefill LM head, which reads this way, took 2.5 times
// as long after the layout change: 484 against 193 us, H200, 1B shape).
__device__ __forceinline__ uint4 ld_weights16(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}


__device__ __forceinline__ float bf(const __nv_bfloat16 v) { return __bfloat162float(v); }

__device__ __forceinline__ void unpack8(const uint4 v, float out[8]) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    out[2 * i] = __uint_as_float(w[i] << 16);
    out[2 * i + 1] = __uint_as_float(w[i] & 0xFFFF0000u);
  }
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// Activation buffers in bf16 (kFlagBf16In / kFlagBf16Out, isa.h): buffer `off` of the arena holds
// bf16 values at half the float stride.
__device__ __forceinline__ __nv_bfloat16* bf16_act(const KernelParams& p, uint32_t off) {
  return reinterpret_cast<__nv_bfloat16*>(p.arena + off);
}
// Element i of activation buffer `off`, as fp32 or as bf16.
__device__ __forceinline__ void store_act(const KernelParams& p, uint32_t off, size_t i, float v, bool bf16) {
  if (bf16)
    bf16_act(p, off)[i] = __float2bfloat16(v);
  else
    p.arena[off + i] = v;
}
// Elements i and i + 1 (i even), in one store.
__device__ __forceinline__ void store_act2(const KernelParams& p, uint32_t off, size_t i, float v0, float v1, bool bf16) {
  if (bf16)
    *reinterpret_cast<uint32_t*>(bf16_act(p, off) + i) = pack_bf16(v0, v1);
  else
    *reinterpret_cast<float2*>(p.arena + off + i) = make_float2(v0, v1);
}

// 16 consecutive values of x as the decode matvecs' tensor-core B fragments (ops/weight_pipe.cuh):
// x = hi + lo with hi = bf16(x) and lo = bf16(x - hi), so that a step's dot products keep about 16
// bits of x at no extra cost. A pipe step multiplies a 16 x 16 A operand of weights (rows 0-7: the
// page's 8 rows at the step's first 16 columns, rows 8-15: the same rows at its next 16) by a
// 16 x 8 B operand whose columns 0 and 1 are hi and lo of the first 16 values of x and columns 2
// and 3 those of the next 16 (columns 4-7 zero). Lane l < 16 holds B[2t, 2t + 1][n] and B[2t + 8,
// 2t + 9][n] for n = l / 4, t = l % 4: so each block of 16 values fills 8 lanes' fragments,
// out[t] (hi) and out[4 + t] (lo), 8 bytes each, in the block's own 64 bytes; a step is one 8-byte
// load per lane, straight into the mma's registers.
//
// A block is written by two threads, a half each (cuda/half_block.h): half h takes the values a =
// [4h, 4h + 4) and c = [8 + 4h, 12 + 4h), whose hi pairs out[2h], out[2h + 1] fill a's 16 bytes and
// lo pairs out[4 + 2h], out[5 + 2h] fill c's. hi and lo are packed from one bf16x2 conversion a pair
// (the hi values come back by shifts, not a second conversion), which rounds as bf16(x) and
// bf16(x - hi) do.
struct HiLo {
  uint4 hi, lo;  // for a's 16 bytes and c's
};
__device__ __forceinline__ HiLo hi_lo_half(const float4 a, const float4 c) {
  const float x[8] = {a.x, a.y, c.x, c.y, a.z, a.w, c.z, c.w};  // the order of the 4 pairs in out[]
  uint32_t hi[4], lo[4];
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    hi[k] = pack_bf16(x[2 * k], x[2 * k + 1]);
    lo[k] = pack_bf16(x[2 * k] - __uint_as_float(hi[k] << 16), x[2 * k + 1] - __uint_as_float(hi[k] & 0xFFFF0000u));
  }
  return {make_uint4(hi[0], hi[1], hi[2], hi[3]), make_uint4(lo[0], lo[1], lo[2], lo[3])};
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
  return v;
}

// The largest v over the warp and its index i, the lowest index among equals, in every lane.
__device__ __forceinline__ void warp_argmax(float& v, uint32_t& i) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float vo = __shfl_xor_sync(0xFFFFFFFFu, v, o);
    const uint32_t io = __shfl_xor_sync(0xFFFFFFFFu, i, o);
    if (vo > v || (vo == v && io < i)) v = vo, i = io;
  }
}

// Sum over the block; `scratch` holds kWarps floats. Every thread gets the result.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  v = warp_sum(v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  sync_consumers();
  if (lane == 0) scratch[warp] = v;
  sync_consumers();
  float t = lane < kWarps ? scratch[lane] : 0.0f;
  return warp_sum(t);
}

__device__ __forceinline__ float activate(float x, Activation act) {
  if (act == Activation::Silu) return x / (1.0f + __expf(-x));
  return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

__device__ __forceinline__ const __nv_bfloat16* weight(const KernelParams& p, uint32_t id) {
  return id == kNone ? nullptr : p.weights[id];
}

// 16 bytes from global to shared memory, cached in L2 only (activations written by other SMs).
__device__ __forceinline__ void cp_async16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(smem_addr(dst)), "l"(src) : "memory");
}

// The same with an L2 policy (l2_policy.cuh): the weight pipe's copies below sm_90.
__device__ __forceinline__ void cp_async16_hinted(void* dst, const void* src, uint64_t policy) {
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2;" ::"r"(smem_addr(dst)), "l"(src),
               "l"(policy)
               : "memory");
}

// The same, or 16 zero bytes where !valid (src-size 0).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0)
               : "memory");
}

// One activation row of `dim` (a multiple of 16) floats into shared memory as the weight pipe's B
// fragments (hi_lo_half), normalized by `norm` when it names a weight, in one round trip to
// memory: the row is copied with cp.async while the norm weight is prefetched. On a decode step
// this load is on the critical path of every matvec, and under the weight stream an L2 round trip
// takes about 2 us (H200, traced): the row then the weight, one after the other, cost a norm-fused
// tile 3.8 us, together 2.6. Each thread copies, normalizes and rewrites in place its own half
// blocks (half_block: fp32 in, hi/lo bf16 pairs out, the same 32 bytes), so it needs no barrier to
// read what it copied, and the row takes no registers while in flight.
// `tag`: the tag the row's values carry (kNoTag: none), awaited per 16-byte chunk once the copy has landed.
template <uint32_t kDim = 0>
__device__ void load_row_hi_lo(const KernelParams& p, float* dst, const float* src, uint32_t dim_, InNorm norm,
                               float* scratch, uint32_t tag = kNoTag) {
  const uint32_t blocks = (kDim ? kDim : dim_) / 16, halves = 2 * blocks;
  for (uint32_t u = threadIdx.x; u < halves; u += kThreads) {
    const HalfBlock hb = half_block(u);
    cp_async16(dst + hb.a, src + hb.a);
    cp_async16(dst + hb.c, src + hb.c);
  }
  // The norm weight is asked of L1 now, so that it arrives with the row; a prefetch rather than a
  // load into registers, which made the decode kernel spill (ptxas: 16 more live registers).
  const __nv_bfloat16* w = weight(p, norm.weight);
  if (w)
    for (uint32_t blk = threadIdx.x * 4; blk < blocks; blk += kThreads * 4)
      asm volatile("prefetch.global.L1 [%0];" ::"l"(w + blk * 16));
  asm volatile("cp.async.wait_all;" ::: "memory");
  if (tag != kNoTag)
    for (uint32_t u = threadIdx.x; u < halves; u += kThreads) {
      const HalfBlock hb = half_block(u);
      await_tags<4>(dst + hb.a, src + hb.a, tag);
      await_tags<4>(dst + hb.c, src + hb.c, tag);
    }
  trace_phase(kPhaseRowLanded);
  // Half u's values (a, c), read in the order half_block gives.
  const auto read = [&](const HalfBlock& hb, float4& a, float4& c) {
    const float4 first = *reinterpret_cast<const float4*>(dst + (hb.c_first ? hb.c : hb.a));
    const float4 second = *reinterpret_cast<const float4*>(dst + (hb.c_first ? hb.a : hb.c));
    a = hb.c_first ? second : first;
    c = hb.c_first ? first : second;
  };
  const auto write = [&](const HalfBlock& hb, const float4 a, const float4 c) {
    const HiLo out = hi_lo_half(a, c);
    *reinterpret_cast<uint4*>(dst + (hb.c_first ? hb.c : hb.a)) = hb.c_first ? out.lo : out.hi;
    *reinterpret_cast<uint4*>(dst + (hb.c_first ? hb.a : hb.c)) = hb.c_first ? out.hi : out.lo;
  };
  if (!w) {
    for (uint32_t u = threadIdx.x; u < halves; u += kThreads) {
      const HalfBlock hb = half_block(u);
      float4 a, c;
      read(hb, a, c);
      write(hb, a, c);
    }
    sync_consumers();
    trace_phase(kPhaseRowWhole);
    return;
  }
  const __nv_bfloat16* bias = weight(p, norm.bias);
  const float dim = float(blocks * 16);
  const auto sum4 = [](const float4 v, float m, bool squares) {
    const float x = v.x - m, y = v.y - m, z = v.z - m, t = v.w - m;
    return squares ? x * x + y * y + z * z + t * t : x + y + z + t;
  };
  float mean = 0;
  if (p.dims.norm_kind == uint8_t(NormKind::Layer)) {
    float s = 0;
    for (uint32_t u = threadIdx.x; u < halves; u += kThreads) {
      float4 a, c;
      read(half_block(u), a, c);
      s += sum4(a, 0.0f, false) + sum4(c, 0.0f, false);
    }
    mean = block_sum(s, scratch) / dim;
  }
  float ss = 0;
  for (uint32_t u = threadIdx.x; u < halves; u += kThreads) {
    float4 a, c;
    read(half_block(u), a, c);
    ss += sum4(a, mean, true) + sum4(c, mean, true);
  }
  const float inv = rsqrtf(block_sum(ss, scratch) / dim + p.dims.norm_eps);
  trace_phase(kPhaseRowWhole);  // past block_sum's barriers: every thread's part landed and summed
  // (v - mean) * inv * g + bias for the 4 values at e.
  const auto norm4 = [&](float4 v, uint32_t e) {
    const uint2 g2 = __ldg(reinterpret_cast<const uint2*>(w + e));
    const float2 g01 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&g2.x));
    const float2 g23 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&g2.y));
    v.x = (v.x - mean) * inv * g01.x + (bias ? bf(bias[e]) : 0.0f);
    v.y = (v.y - mean) * inv * g01.y + (bias ? bf(bias[e + 1]) : 0.0f);
    v.z = (v.z - mean) * inv * g23.x + (bias ? bf(bias[e + 2]) : 0.0f);
    v.w = (v.w - mean) * inv * g23.y + (bias ? bf(bias[e + 3]) : 0.0f);
    return v;
  };
  for (uint32_t u = threadIdx.x; u < halves; u += kThreads) {
    const HalfBlock hb = half_block(u);
    float4 a, c;
    read(hb, a, c);
    write(hb, norm4(a, hb.a), norm4(c, hb.c));
  }
  sync_consumers();
}

// `rows` rows of `dim` floats that this block's threads have just written to shared memory,
// normalized in place by `norm` when it names a weight (RMSNorm or LayerNorm, as the model's dims
// say). `scratch`: kWarps floats. Ends with a barrier.
__device__ void normalize_rows(const KernelParams& p, float* dst, uint32_t rows, uint32_t dim, InNorm norm,
                               float* scratch) {
  if (norm.weight == kNone) {
    sync_consumers();
    return;
  }
  const __nv_bfloat16* w = weight(p, norm.weight);
  const __nv_bfloat16* b = weight(p, norm.bias);
  const bool layer = p.dims.norm_kind == uint8_t(NormKind::Layer);
  for (uint32_t m = 0; m < rows; ++m) {
    float* row = dst + m * dim;
    sync_consumers();
    float mean = 0;
    if (layer) {
      float s = 0;
      for (uint32_t i = threadIdx.x; i < dim; i += kThreads) s += row[i];
      mean = block_sum(s, scratch) / dim;
    }
    float ss = 0;
    for (uint32_t i = threadIdx.x; i < dim; i += kThreads) ss += (row[i] - mean) * (row[i] - mean);
    const float inv = rsqrtf(block_sum(ss, scratch) / dim + p.dims.norm_eps);
    for (uint32_t i = threadIdx.x; i < dim; i += kThreads)
      row[i] = (row[i] - mean) * inv * bf(w[i]) + (b ? bf(b[i]) : 0.0f);
  }
  sync_consumers();
}

// 16 bytes of activations (4 floats, or 8 bf16 widened) as floats at dst (16-byte aligned).
__device__ __forceinline__ void store_widened(float* dst, const uint4 v, const float*) {
  *reinterpret_cast<uint4*>(dst) = v;
}
__device__ __forceinline__ void store_widened(float* dst, const uint4 v, const __nv_bfloat16*) {
  float f[8];
  unpack8(v, f);
  reinterpret_cast<float4*>(dst)[0] = make_float4(f[0], f[1], f[2], f[3]);
  reinterpret_cast<float4*>(dst)[1] = make_float4(f[4], f[5], f[6], f[7]);
}
__device__ __forceinline__ float ld_act_widened(const float* p) { return ld_act(p); }
__device__ __forceinline__ float ld_act_widened(const __nv_bfloat16* p) {
  return __uint_as_float(uint32_t(__ldcg(reinterpret_cast<const unsigned short*>(p))) << 16);
}

// n activations (fp32 or bf16) from global to shared memory as floats, by all consumer threads.
// All of a thread's loads are issued before its stores: a plain load-store loop would pay one L2
// round trip per element, since the compiler cannot tell that dst and src never alias.
// `tag` (fp32 only): the tag the values carry, awaited per 16-byte load (kNoTag: none).
template <class T>
__device__ void copy_act(float* dst, const T* src, uint32_t n, uint32_t tag = kNoTag) {
  constexpr uint32_t E = 16 / sizeof(T);  // elements per 16-byte load
  constexpr uint32_t kBatch = 8;
  if (n % E == 0 && reinterpret_cast<uintptr_t>(src) % 16 == 0 && reinterpret_cast<uintptr_t>(dst) % 16 == 0) {
    const uint4* s = reinterpret_cast<const uint4*>(src);
    for (uint32_t i0 = threadIdx.x; i0 < n / E; i0 += kThreads * kBatch) {
      // Every element assigned (zero past the end): one assigned only where in range keeps its value
      // from the batch before, so the batch's 32 registers stay live across batches, and ptxas spilled
      // them where the kernel's other state grew (each batch then refilled from local memory).
      uint4 v[kBatch];
#pragma unroll
      for (uint32_t j = 0; j < kBatch; ++j)
        v[j] = i0 + j * kThreads < n / E ? __ldcg(s + i0 + j * kThreads) : uint4{};
#pragma unroll
      for (uint32_t j = 0; j < kBatch; ++j)
        if (i0 + j * kThreads < n / E) {
          const size_t at = (i0 + j * kThreads) * E;
          store_widened(dst + at, v[j], src);
          if constexpr (sizeof(T) == sizeof(float)) await_tags<E>(dst + at, src + at, tag);
        }
    }
  } else {
    for (uint32_t i = threadIdx.x; i < n; i += kThreads) {
      if constexpr (sizeof(T) == sizeof(float))
        dst[i] = tag == kNoTag ? ld_act(src + i) : ld_act_tagged(src + i, tag);
      else
        dst[i] = ld_act_widened(src + i);
    }
  }
}

// Loads `rows` activation rows of `dim` values (fp32, or bf16 under kFlagBf16In) into shared memory
// as floats, normalized by `norm` when it names a weight (normalize_rows).
// kDim: the row length at compile time (a specialized build, cuda/spec.h), or 0 to use `dim`.
// kHiLo: one fp32 row (dim % 16 == 0) left as the weight pipe's B fragments instead (load_row_hi_lo).
// tag: the tag the values carry (fp32 decode rows, kFlagCheckIn), or kNoTag.
template <uint32_t kDim = 0, bool kHiLo = false, class T>
__device__ void load_rows(const KernelParams& p, float* dst, const T* src, uint32_t rows, uint32_t dim_,
                          InNorm norm, float* scratch, uint32_t tag = kNoTag) {
  const uint32_t dim = kDim ? kDim : dim_;
  if constexpr (kHiLo) {
    static_assert(sizeof(T) == sizeof(float), "the pipe's input rows are fp32");
    load_row_hi_lo<kDim>(p, dst, src, dim, norm, scratch, tag);
  } else {
    copy_act(dst, src, rows * dim, tag);
    normalize_rows(p, dst, rows, dim, norm, scratch);
  }
}

// A matvec's input rows [row0, row0 + rows) of arena buffer `in`, fp32 or (bf16) bf16.
__device__ __forceinline__ void load_act_rows(const KernelParams& p, float* dst, uint32_t in, uint32_t row0,
                                              uint32_t rows, uint32_t dim, InNorm norm, bool bf16, float* scratch,
                                              uint32_t tag = kNoTag) {
  if (bf16)
    load_rows(p, dst, bf16_act(p, in) + size_t(row0) * dim, rows, dim, norm, scratch);
  else
    load_rows(p, dst, p.arena + in + size_t(row0) * dim, rows, dim, norm, scratch, tag);
}

// Row r of a paged weight matrix (cuda/paged_weights.h) with K columns: at(k) is element k, and the
// 8 elements from a multiple of 8 are contiguous.
struct PagedRow {
  const __nv_bfloat16* group;  // the row's group
  uint32_t r, K;               // r: the row within its group
  __device__ __forceinline__ const __nv_bfloat16* at(uint32_t k) const { return group + paged_in_group(r, k, K); }
};

__device__ __forceinline__ PagedRow paged_row(const __nv_bfloat16* W, uint32_t row, uint32_t K) {
  return {W + size_t(row / kPageRows) * kPageRows * K, row % kPageRows, K};
}

// Dot products of R bf16 weight rows (`rows[i]`, nr <= R of them valid) with `mc` (<= MC) fp32 rows
// in shared memory, by one warp; every lane gets the sums. All R rows' 16-byte loads of an
// iteration are issued before their FMAs, so a warp keeps R * 2 loads in flight: a matvec is
// bound by bytes in flight, not by arithmetic. The vector path needs dim % 8 == 0.
template <int R, int MC>
__device__ __forceinline__ void warp_dot_rows(const PagedRow rows[R], uint32_t nr, const float* x,
                                              uint32_t dim, uint32_t mc, float acc[R][MC]) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < MC; ++m) acc[r][m] = 0;
  if (dim % 8 == 0) {
#pragma unroll 2
    for (uint32_t k = lane * 8; k < dim; k += 256) {
      uint4 raw[R];
#pragma unroll
      for (int r = 0; r < R; ++r)
        if (r < int(nr)) raw[r] = ld_weights16(rows[r].at(k));
#pragma unroll
      for (int m = 0; m < MC; ++m) {
        if (m >= int(mc)) break;
        const float4 a = *reinterpret_cast<const float4*>(x + m * dim + k);
        const float4 b = *reinterpret_cast<const float4*>(x + m * dim + k + 4);
#pragma unroll
        for (int r = 0; r < R; ++r) {
          if (r >= int(nr)) break;
          float w[8];
          unpack8(raw[r], w);
          acc[r][m] += w[0] * a.x + w[1] * a.y + w[2] * a.z + w[3] * a.w + w[4] * b.x + w[5] * b.y +
                       w[6] * b.z + w[7] * b.w;
        }
      }
    }
  } else {
    for (uint32_t k = lane; k < dim; k += 32)
#pragma unroll
      for (int r = 0; r < R; ++r) {
        if (r >= int(nr)) break;
        const float w = bf(*rows[r].at(k));
#pragma unroll
        for (int m = 0; m < MC; ++m)
          if (m < int(mc)) acc[r][m] += w * x[m * dim + k];
      }
  }
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < MC; ++m) acc[r][m] = warp_sum(acc[r][m]);
}

}  // namespace mk::cuda
