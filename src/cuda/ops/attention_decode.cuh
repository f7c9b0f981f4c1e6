// Decode attention (one query row) on the GPU. A unit is (kv head, head block, split); its keys
// are dealt to all eight consumer warps, and every key is read once for all query heads of its head
// block (up to kDecodeHeads at a time) instead of once per query head.
//
// A key row is read by D/8 lanes, 16 bytes each, so one load instruction of a warp covers 32/(D/8)
// whole rows, coalesced; kDecodeUnroll such loads of K and of V are issued before their first use.
// Each lane keeps an online softmax (running max, sum and its 8 output dims per head) over its
// keys; lanes of a warp merge by shuffles, warps merge in shared memory. The output is the same as
// the general path's: the split's normalized output and its log-sum-exp.
#pragma once

#include "cuda/device_common.cuh"

namespace mk::cuda {

constexpr uint32_t kDecodeHeads = 4;   // query heads per pass over the keys (registers: 8 q + 8 o each)
constexpr uint32_t kDecodeUnroll = 4;  // key steps whose K and V loads are in flight together

// Shared memory for the merge across warps: per warp and head, D outputs, the max and the sum.
__host__ __device__ constexpr uint32_t attn_decode_smem_floats(uint32_t D) { return kWarps * kDecodeHeads * (D + 2); }

// Head dims whose rows split into 16-byte pieces that tile a warp evenly: 8 to 256 by powers of two.
__device__ __forceinline__ bool attn_decode_fits(const KernelParams& p) {
  const uint32_t D = p.dims.head_dim, L = D / 8;
  return p.dims.n_tokens == 1 && D % 8 == 0 && L >= 1 && L <= 32 && (L & (L - 1)) == 0 &&
         p.smem_floats >= kSmemHead + attn_decode_smem_floats(D);
}

// Merges the online-softmax state (m, l, o) of another set of keys into this one.
__device__ __forceinline__ void softmax_merge(float& m, float& l, float o[8], float m2, float l2, const float o2[8]) {
  const float mn = fmaxf(m, m2);
  const float c1 = mn == -INFINITY ? 0.0f : __expf(m - mn), c2 = mn == -INFINITY ? 0.0f : __expf(m2 - mn);
  l = l * c1 + l2 * c2;
#pragma unroll
  for (int i = 0; i < 8; ++i) o[i] = o[i] * c1 + o2[i] * c2;
  m = mn;
}

// The online-softmax states that the kWarps warps left in shared memory, `stride` floats apart
// (each: D outputs, then the max and the sum), merged for output i.
struct MergedState {
  float mx, sum, acc;
  __device__ float output() const { return sum > 0 ? acc / sum : 0.0f; }
};
__device__ __forceinline__ MergedState merge_warp_states(const float* states, uint32_t stride, uint32_t D, uint32_t i) {
  MergedState st{-INFINITY, 0.0f, 0.0f};
  for (uint32_t w = 0; w < kWarps; ++w) st.mx = fmaxf(st.mx, states[w * stride + D]);
  if (st.mx != -INFINITY)
    for (uint32_t w = 0; w < kWarps; ++w) {
      const float* src = states + w * stride;
      const float c = __expf(src[D] - st.mx);
      st.sum += src[D + 1] * c;
      st.acc += src[i] * c;
    }
  return st;
}

// Inlined: as a call, the registers live across it in the kernel spilled (ptxas: 384 bytes of stack
// against 96).
// kD: the head size at compile time (a specialized build, cuda/spec.h), or 0 to read it.
template <uint32_t kD = 0>
__device__ __forceinline__ void attn_decode(const Instruction& ins, const KernelParams& p, float* smem) {
  const AttnPartialArgs& a = ins.a.attn;
  const ModelDims& d = p.dims;
  const uint32_t D = kD ? kD : d.head_dim, Hq = d.n_heads, Hkv = d.n_kv_heads, S = a.num_splits, group = Hq / Hkv;
  const uint32_t L = D / 8, KP = 32 / L;  // lanes per key, keys per warp load
  const uint32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32, slot = lane / L, part = lane % L;
  const uint32_t pos = p.step.pos, ctx_end = pos + 1, chunk = (ctx_end + S - 1) / S;
  const uint32_t stride = kWarps * KP;  // keys between one warp's consecutive loads
  float* merge = smem + kSmemHead;      // [warp][head][D + 2]

  for (uint32_t u = ins.tile_begin; u < ins.tile_end; ++u) {
    const AttnUnit unit = attn_unit(a, u, group, 1);
    const uint32_t kvh = unit.kvh, s = unit.s;
    const uint32_t k0 = s * chunk, k1 = ctx_end < k0 + chunk ? ctx_end : k0 + chunk;
    uint32_t lo = a.window && pos + 1 > a.window ? pos + 1 - a.window : 0;
    lo = lo > k0 ? lo : k0;
    const uint32_t hi = k1;  // k1 <= pos + 1: causal by construction
    const __nv_bfloat16* K = p.kv + ((size_t(ins.layer) * 2 * Hkv + kvh) * d.max_ctx) * D + part * 8;
    const __nv_bfloat16* V = K + size_t(Hkv) * d.max_ctx * D;

    // A round of kDecodeUnroll key steps' K and V loads from key `base` on.
    uint4 kr[kDecodeUnroll], vr[kDecodeUnroll];
    auto load_round = [&](uint32_t base) {
#pragma unroll
      for (uint32_t j = 0; j < kDecodeUnroll; ++j) {
        const uint32_t key = base + j * stride + slot;
        if (key < hi) {
          kr[j] = __ldcg(reinterpret_cast<const uint4*>(K + size_t(key) * D));
          vr[j] = __ldcg(reinterpret_cast<const uint4*>(V + size_t(key) * D));
        } else {
          kr[j] = vr[j] = make_uint4(0, 0, 0, 0);
        }
      }
    };
    const uint32_t base0 = lo + warp * KP;
    for (uint32_t g0 = unit.g0; g0 < unit.g1; g0 += kDecodeHeads) {
      const uint32_t G = unit.g1 - g0 < kDecodeHeads ? unit.g1 - g0 : kDecodeHeads;
      // The first round's keys are asked for before q, so that their round trips overlap rather
      // than follow each other (q is in L2, most keys are not): one memory latency less per unit,
      // on the critical path of every layer.
      load_round(base0);
      float q[kDecodeHeads][8], o[kDecodeHeads][8], m[kDecodeHeads], l[kDecodeHeads];
#pragma unroll
      for (uint32_t h = 0; h < kDecodeHeads; ++h) {
        m[h] = -INFINITY, l[h] = 0;
        float4 x0 = make_float4(0, 0, 0, 0), x1 = x0;
        if (h < G) {
          const float* qp = p.arena + a.q + size_t(kvh * group + g0 + h) * D + part * 8;
          x0 = __ldcg(reinterpret_cast<const float4*>(qp));
          x1 = __ldcg(reinterpret_cast<const float4*>(qp + 4));
        }
        const float v[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
#pragma unroll
        for (int i = 0; i < 8; ++i) q[h][i] = v[i] * d.attn_scale, o[h][i] = 0;
      }

      // Warp-uniform loop: every lane runs every shuffle; keys past `hi` are masked.
      for (uint32_t base = base0; base < hi; base += kDecodeUnroll * stride) {
        if (base != base0) load_round(base);
#pragma unroll
        for (uint32_t j = 0; j < kDecodeUnroll; ++j) {
          if (base + j * stride >= hi) break;  // warp-uniform: no key of this step is in range
          const bool valid = base + j * stride + slot < hi;
          float kf[8], vf[8];
          unpack8(kr[j], kf);
          unpack8(vr[j], vf);
          // The first keys in (builds with MK_TRACE_PHASES): the phase tables' "input load". The
          // branch on a loaded word makes the stamp wait for its load, not just follow its issue (a
          // key whose first two values are all-ones NaNs only goes unstamped).
          if (u == ins.tile_begin && g0 == unit.g0 && base == base0 && j == 0 && kr[0].x != 0xFFFFFFFFu)
            trace_phase(kPhaseInput);
          // Each head's score, summed over the key's L lanes. With L known at compile time (a
          // specialized build) one head after another, as ptxas schedules them well; read at run
          // time, a loop per head kept each head's shuffles waiting on the one before, so the
          // generic build unrolls the offsets under a warp-uniform `off < L` and shuffles the four
          // heads side by side (same sums, same order). H100, session 43, interleaved A/B: the
          // generic build 1.0-1.3% / 3.0-3.6% faster at context 1024 / 4096 on Llama-3.2-1B, 1.0-4.9% on
          // Qwen2.5-1.5B; the same form in the specialized build cost it 2% there.
          auto dot = [&](uint32_t h) {  // this lane's part of head h's score
            float v = 0;
#pragma unroll
            for (int i = 0; i < 8; ++i) v += q[h][i] * kf[i];
            return v;
          };
          float sc[kDecodeHeads];
          if constexpr (kD == 0) {
#pragma unroll
            for (uint32_t h = 0; h < kDecodeHeads; ++h) sc[h] = dot(h);
#pragma unroll
            for (uint32_t off = 16; off > 0; off /= 2)
              if (off < L)
#pragma unroll
                for (uint32_t h = 0; h < kDecodeHeads; ++h) sc[h] += __shfl_xor_sync(0xFFFFFFFFu, sc[h], off);
          }
#pragma unroll
          for (uint32_t h = 0; h < kDecodeHeads; ++h) {
            if constexpr (kD != 0) {
              sc[h] = dot(h);
              for (uint32_t off = L / 2; off > 0; off /= 2) sc[h] += __shfl_xor_sync(0xFFFFFFFFu, sc[h], off);
            }
            if (!valid || h >= G) continue;
            const float mn = fmaxf(m[h], sc[h]);
            const float c = __expf(m[h] - mn), e = __expf(sc[h] - mn);
            l[h] = l[h] * c + e;
#pragma unroll
            for (int i = 0; i < 8; ++i) o[h][i] = o[h][i] * c + e * vf[i];
            m[h] = mn;
          }
        }
      }

      // Merge the warp's key slots (lanes L apart), then the warps through shared memory.
#pragma unroll
      for (uint32_t h = 0; h < kDecodeHeads; ++h)
        for (uint32_t off = L; off < 32; off *= 2) {
          float o2[8];
#pragma unroll
          for (int i = 0; i < 8; ++i) o2[i] = __shfl_xor_sync(0xFFFFFFFFu, o[h][i], off);
          const float m2 = __shfl_xor_sync(0xFFFFFFFFu, m[h], off), l2 = __shfl_xor_sync(0xFFFFFFFFu, l[h], off);
          softmax_merge(m[h], l[h], o[h], m2, l2, o2);
        }
      if (slot == 0)
#pragma unroll
        for (uint32_t h = 0; h < kDecodeHeads; ++h) {
          float* w = merge + (warp * kDecodeHeads + h) * (D + 2);
#pragma unroll
          for (int i = 0; i < 8; ++i) w[part * 8 + i] = o[h][i];
          if (part == 0) w[D] = m[h], w[D + 1] = l[h];
        }
      sync_consumers();
      if (u == ins.tile_begin && g0 == unit.g0) trace_phase(kPhaseWeights);  // every key, the warps' states met
      for (uint32_t idx = threadIdx.x; idx < G * D; idx += kThreads) {
        const uint32_t h = idx / D, i = idx % D;
        const MergedState st = merge_warp_states(merge + h * (D + 2), kDecodeHeads * (D + 2), D, i);
        const uint32_t hq = kvh * group + g0 + h;
        p.arena[a.part_o + (size_t(s) * Hq + hq) * D + i] = with_tag(st.output(), output_tag(ins));
        if (i == 0) p.arena[a.part_lse + size_t(s) * Hq + hq] = st.sum > 0 ? st.mx + logf(st.sum) : -INFINITY;
      }
      sync_consumers();  // the merge buffer is reused by the next pass
    }
  }
}

}  // namespace mk::cuda
