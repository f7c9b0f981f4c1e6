// Split-KV attention on the GPU. AttnPartial: a decode unit runs on all warps at once
// (ops/attention_decode.cuh) and a prefill unit on the tensor cores (ops/attention_mma.cuh) when
// the head dimension and shared memory allow; otherwise one warp per (unit, row, query head) runs an
// online softmax over its chunk of keys. AttnReduce merges the splits with their log-sum-exps.
#pragma once

#include "cuda/ops/attention_decode.cuh"
#include "cuda/ops/attention_mma.cuh"
#include "cuda/ops/matvec.cuh"

namespace mk::cuda {

constexpr uint32_t kMaxHeadDim = 256;  // lanes hold head_dim / 32 output values each
constexpr uint32_t kKeyBlock = 128;    // keys scored per block of the online softmax

// q . K[key] for one key by one lane, q in shared memory (a broadcast read), K read at L2: the
// cache is written by other SMs during this launch.
__device__ __forceinline__ float score(const float* q, const __nv_bfloat16* k, uint32_t D) {
  float s = 0;
  if (D % 8 == 0) {
    for (uint32_t d = 0; d < D; d += 8) {
      float w[8];
      unpack8(__ldcg(reinterpret_cast<const uint4*>(k + d)), w);
#pragma unroll
      for (int i = 0; i < 8; ++i) s += q[d + i] * w[i];
    }
  } else {
    for (uint32_t d = 0; d < D; ++d) s += q[d] * bf(k[d]);
  }
  return s;
}

// One warp per (unit, row, query head). Scores: a lane per key, kKeyBlock keys at a time, kept in
// shared memory; then softmax weights; then the weighted sum of V with lanes over head dims.
template <bool kMma, class Spec>
__device__ void run_attn_partial(const Instruction& ins, const KernelParams& p, float* smem) {
  const AttnPartialArgs& a = ins.a.attn;
  const ModelDims& d = p.dims;
  const uint32_t D = d.head_dim, Hq = d.n_heads, Hkv = d.n_kv_heads, M = d.n_tokens, S = a.num_splits;
  if (!kMma && attn_decode_fits(p)) return attn_decode<Spec::kHeadDim>(ins, p, smem);
  if (kMma && M >= kGemmMinTokens) {
    if (D == 64 && p.smem_floats >= kSmemHead + attn_mma_smem_floats<64>()) return attn_partial_mma<64>(ins, p, smem);
    if (D == 128 && p.smem_floats >= kSmemHead + attn_mma_smem_floats<128>()) return attn_partial_mma<128>(ins, p, smem);
  }
  const uint32_t group = Hq / Hkv, heads = group / attn_unit_head_blocks(a);
  const uint32_t R = attn_block_rows(M, a.row_block);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* qs = smem + kSmemHead + warp * (kMaxHeadDim + kKeyBlock);
  float* sc = qs + kMaxHeadDim;
  const uint32_t ctx_end = p.step.pos + M, chunk = (ctx_end + S - 1) / S;
  const uint32_t items = (ins.tile_end - ins.tile_begin) * R * heads;
  constexpr int J = kMaxHeadDim / 32;
  for (uint32_t it = warp; it < items; it += kWarps) {
    const AttnUnit unit = attn_unit(a, ins.tile_begin + it / (heads * R), group, M);
    const uint32_t kvh = unit.kvh, s = unit.s, m = unit.m0 + (it / heads) % R, hq = kvh * group + unit.g0 + it % heads;
    if (m >= M) continue;  // the last row block may be short
    const uint32_t k0 = s * chunk, k1 = ctx_end < k0 + chunk ? ctx_end : k0 + chunk;
    const uint32_t pabs = p.step.pos + m;
    uint32_t lo = a.window && pabs + 1 > a.window ? pabs + 1 - a.window : 0;
    lo = lo > k0 ? lo : k0;
    const uint32_t hi = k1 < pabs + 1 ? k1 : pabs + 1;
    const float* qp = p.arena + a.q + (size_t(m) * Hq + hq) * D;
    for (uint32_t i = lane; i < D; i += 32) qs[i] = ld_act(qp + i) * d.attn_scale;
    __syncwarp();
    const __nv_bfloat16* K = p.kv + ((size_t(ins.layer) * 2 * Hkv + kvh) * d.max_ctx) * D;
    const __nv_bfloat16* V = p.kv + ((size_t(ins.layer) * 2 * Hkv + Hkv + kvh) * d.max_ctx) * D;
    float mx = -INFINITY, l = 0, o[J];
#pragma unroll
    for (int j = 0; j < J; ++j) o[j] = 0;
    for (uint32_t kb = lo; kb < hi; kb += kKeyBlock) {
      const uint32_t n = hi - kb < kKeyBlock ? hi - kb : kKeyBlock;
      float bmax = -INFINITY;
      for (uint32_t t = lane; t < n; t += 32) {
        sc[t] = score(qs, K + size_t(kb + t) * D, D);
        bmax = fmaxf(bmax, sc[t]);
      }
      const float mnew = fmaxf(mx, warp_max(bmax));
      const float c = __expf(mx - mnew);
      float sum = 0;
      for (uint32_t t = lane; t < n; t += 32) {
        const float e = __expf(sc[t] - mnew);
        sc[t] = e;
        sum += e;
      }
      l = l * c + warp_sum(sum);
      __syncwarp();
#pragma unroll
      for (int j = 0; j < J; ++j) o[j] *= c;
      // Unrolled so that several keys' V loads are in flight at once: one at a time, each waited
      // out a full memory latency.
#pragma unroll 8
      for (uint32_t t = 0; t < n; ++t) {
        const float e = sc[t];
        const __nv_bfloat16* vr = V + size_t(kb + t) * D;
#pragma unroll
        for (int j = 0; j < J; ++j) {
          const uint32_t i = lane + 32 * j;
          if (i < D) o[j] += e * __bfloat162float(__ldcg(vr + i));
        }
      }
      mx = mnew;
      __syncwarp();
    }
    const size_t po = ((size_t(s) * M + m) * Hq + hq) * D;
#pragma unroll
    for (int j = 0; j < J; ++j) {
      const uint32_t i = lane + 32 * j;
      if (i < D) store_act(p, a.part_o, po + i, with_tag(l > 0 ? o[j] / l : 0.0f, output_tag(ins)), ins.flags & kFlagBf16Out);
    }
    if (lane == 0) p.arena[a.part_lse + (size_t(s) * M + m) * Hq + hq] = l > 0 ? mx + logf(l) : -INFINITY;
    __syncwarp();
  }
}

// Decode (one row): a head's splits dealt to all warps, each warp's loads (the splits' log-sum-exps
// and outputs) all issued before their first use, and the warps' online-softmax states merged in
// shared memory: one L2 round trip and a barrier. A warp per head, as below, left 7 of the 8 warps
// idle (a decode reduce has one head) and paid a round trip per pass over the log-sum-exps and per
// batch of splits: 8 us per instruction with 16 splits (H200, traced).
constexpr uint32_t kReduceSplitsPerWarp = 2;  // a warp's splits in flight at once (16 splits: one pass)

__device__ void attn_reduce_decode(const Instruction& ins, const KernelParams& p, float* smem) {
  const AttnReduceArgs& a = ins.a.reduce;
  const uint32_t D = p.dims.head_dim, Hq = p.dims.n_heads, S = a.num_splits;
  const uint32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  constexpr uint32_t J = kMaxHeadDim / 32, P = kReduceSplitsPerWarp;
  float* merge = smem + kSmemHead;  // [warp][D + 2]: the warp's outputs, max and sum
  for (uint32_t h = ins.tile_begin; h < ins.tile_end; ++h) {
    float m = -INFINITY, l = 0, o[J];
#pragma unroll
    for (uint32_t j = 0; j < J; ++j) o[j] = 0;
    for (uint32_t s0 = warp; s0 < S; s0 += kWarps * P) {
      float lse[P], v[P][J];
#pragma unroll
      for (uint32_t b = 0; b < P; ++b) {
        const uint32_t s = s0 + b * kWarps;
        lse[b] = s < S ? ld_act(p.arena + a.part_lse + size_t(s) * Hq + h) : -INFINITY;
        const float* po = p.arena + a.part_o + (size_t(s) * Hq + h) * D;
#pragma unroll
        for (uint32_t j = 0; j < J; ++j) v[b][j] = s < S && lane + 32 * j < D ? ld_act(po + lane + 32 * j) : 0.0f;
      }
#pragma unroll
      for (uint32_t b = 0; b < P; ++b) {
        if (lse[b] == -INFINITY) continue;  // an empty split (or none)
        const float mn = fmaxf(m, lse[b]), c = __expf(m - mn), e = __expf(lse[b] - mn);
        l = l * c + e;
#pragma unroll
        for (uint32_t j = 0; j < J; ++j) o[j] = o[j] * c + e * v[b][j];
        m = mn;
      }
    }
    float* w = merge + warp * (D + 2);
#pragma unroll
    for (uint32_t j = 0; j < J; ++j)
      if (lane + 32 * j < D) w[lane + 32 * j] = o[j];
    if (lane == 0) w[D] = m, w[D + 1] = l;
    sync_consumers();
    for (uint32_t i = threadIdx.x; i < D; i += kThreads)
      store_act(p, a.out, size_t(h) * D + i, with_tag(merge_warp_states(merge, D + 2, D, i).output(), output_tag(ins)),
                ins.flags & kFlagBf16Out);
    sync_consumers();  // the merge buffer is reused by the next head
  }
}

// One warp per (head, row). The splits' log-sum-exps are read by all lanes at once (a lane per
// split), turned into weights, and broadcast by shuffles while each lane sums its head dims over
// the splits; every load is independent, so a reduce costs a few L2 round trips, not one per split.
__device__ void run_attn_reduce(const Instruction& ins, const KernelParams& p, float* smem) {
  const AttnReduceArgs& a = ins.a.reduce;
  const ModelDims& d = p.dims;
  const uint32_t D = d.head_dim, Hq = d.n_heads, M = d.n_tokens, S = a.num_splits;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  constexpr int J = kMaxHeadDim / 32;
  if (M == 1 && p.smem_floats >= kSmemHead + kWarps * (D + 2)) return attn_reduce_decode(ins, p, smem);
  const uint32_t items = (ins.tile_end - ins.tile_begin) * M;
  for (uint32_t it = warp; it < items; it += kWarps) {
    const uint32_t h = ins.tile_begin + it / M, m = it % M;
    auto lse_of = [&](uint32_t s) { return ld_act(p.arena + a.part_lse + (size_t(s) * M + m) * Hq + h); };
    float mx = -INFINITY;
    for (uint32_t s = lane; s < S; s += 32) mx = fmaxf(mx, lse_of(s));
    mx = warp_max(mx);
    float total = 0;
    for (uint32_t s = lane; s < S; s += 32) {
      const float lse = lse_of(s);
      if (lse != -INFINITY) total += __expf(lse - mx);
    }
    total = warp_sum(total);
    float acc[J];
#pragma unroll
    for (int j = 0; j < J; ++j) acc[j] = 0;
    for (uint32_t s0 = 0; s0 < S; s0 += 32) {
      float mine = 0;  // this lane's split's weight
      if (s0 + lane < S) {
        const float lse = lse_of(s0 + lane);
        mine = lse != -INFINITY ? __expf(lse - mx) / total : 0.0f;
      }
      const uint32_t n = S - s0 < 32 ? S - s0 : 32;
#pragma unroll 4
      for (uint32_t t = 0; t < n; ++t) {
        const float w = __shfl_sync(0xFFFFFFFFu, mine, t);
        const float* po = p.arena + a.part_o + ((size_t(s0 + t) * M + m) * Hq + h) * D;
#pragma unroll
        for (int j = 0; j < J; ++j)
          if (lane + 32 * j < D) acc[j] += w * ld_act(po + lane + 32 * j);
      }
    }
    const size_t out = (size_t(m) * Hq + h) * D;
#pragma unroll
    for (int j = 0; j < J; ++j)
      if (lane + 32 * j < D)
        store_act(p, a.out, out + lane + 32 * j, with_tag(total > 0 ? acc[j] : 0.0f, output_tag(ins)), ins.flags & kFlagBf16Out);
  }
}

}  // namespace mk::cuda
