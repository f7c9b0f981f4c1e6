// Prefill attention on the tensor cores, in the manner of FlashAttention-2: a warp takes 16 query
// rows of one head; key tiles of kAttnKeys keys (K and V, bf16) come into shared memory once per
// unit for every warp, double-buffered with cp.async; scores Q.K^T and the output P.V are bf16
// mma.sync with fp32 accumulation, the softmax is online in registers.
//
// The decode path (one row, a warp per head) is bound by reading K and V once; a prefill unit has
// up to kPrefillAttnRows rows of every head of a GQA group over the same keys, which is where
// reusing each key tile from shared memory pays.
#pragma once

#include "cuda/ops/mma_gemm.cuh"

namespace mk::cuda {

constexpr uint32_t kAttnKeys = 64;  // keys per tile
constexpr float kLog2e = 1.4426950408889634f;

// 2^x by the SFU alone (exp2(-inf) = 0): the scores are kept in base 2 (Q scaled by log2 e), so that
// each exponential is one subtraction and one MUFU.EX2 rather than __expf's scaling and range steps.
__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// Key halves (kAttnKeyParts, isa.h): a unit whose items fill at most half of the block's warps
// gives each item two warps, one taking the unit's even key tiles, the other its odd ones, merged
// at the end (FlashAttention's split of the keys, inside one block): a unit's time is its longest
// item's walk over the keys, and Qwen2.5-1.5B's causal units of 32 rows took 21 us at 32 keys and
// 52 at 512 (H100, session 32).

// Heads of 128: each warp's Q fragments wait in shared memory (D / 16 x 32 lanes x 16 bytes) rather
// than in 32 registers a thread: with them, O's 64 and the scores' 32 the function spilled (408 /
// 440 bytes under the kernel's 168 registers; its key loop stored 54 and reloaded 65 a tile,
// session 36). Heads of 64 keep them in registers (no spills).
template <uint32_t D>
constexpr bool kAttnQShared = D > 64;

template <uint32_t D>
constexpr uint32_t attn_mma_tile_floats(uint32_t parts) {
  return parts * 2 * 2 * kAttnKeys * (D + 8) / 2;  // per key part, two buffers of K and V tiles, bf16
}

template <uint32_t D>
constexpr uint32_t attn_mma_smem_floats(uint32_t parts = 1) {
  return attn_mma_tile_floats<D>(parts) + (kAttnQShared<D> ? kAttnUnitWarps * (D / 16) * 32 * 4 : 0);
}

// Units: (kv head, split, row block) as on the CPU. Requires D % 16 == 0 (checked by the caller).
template <uint32_t D>
__device__ __noinline__ void attn_partial_mma(const Instruction& ins, const KernelParams& p, float* smem) {
  static_assert(D % 16 == 0, "head_dim in 16-column mma steps");
  static_assert(kWarps == kAttnUnitWarps && kAttnWarpRows == 16, "the scheduler's prefill head blocks (isa.h)");
  constexpr uint32_t kLd = D + 8;  // bf16 row stride: ldmatrix rows in distinct bank groups
  const AttnPartialArgs& a = ins.a.attn;
  const ModelDims& d = p.dims;
  const uint32_t Hq = d.n_heads, Hkv = d.n_kv_heads, M = d.n_tokens, S = a.num_splits, group = Hq / Hkv;
  const uint32_t R = attn_block_rows(M, a.row_block);
  // In a register: read through `a` (the instruction in shared memory), the mask reloaded it for
  // every score.
  const uint32_t window = a.window;
  const float q_scale = d.attn_scale * kLog2e;  // scores in base 2 (ex2)
  const uint32_t ctx_end = p.step.pos + M, chunk = (ctx_end + S - 1) / S;
  const uint32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32, quad = lane % 4;
  __nv_bfloat16* tiles = reinterpret_cast<__nv_bfloat16*>(smem + kSmemHead);
  auto k_tile = [&](uint32_t buf, uint32_t part) { return tiles + ((part * 2 + buf) * 2) * kAttnKeys * kLd; };
  auto v_tile = [&](uint32_t buf, uint32_t part) { return tiles + ((part * 2 + buf) * 2 + 1) * kAttnKeys * kLd; };
  const uint32_t row_tiles = (R + 15) / 16;
  const bool halves_fit = p.smem_floats >= kSmemHead + attn_mma_smem_floats<D>(kAttnKeyParts);
  // This warp's Q fragments (kAttnQShared), after the key tiles: fragment kd of lane l at kd * 32 + l.
  uint4* const q_shared = reinterpret_cast<uint4*>(smem + kSmemHead +
                                                   attn_mma_tile_floats<D>(halves_fit ? kAttnKeyParts : 1)) +
                          warp * (D / 16) * 32 + lane;

  for (uint32_t u = ins.tile_begin; u < ins.tile_end; ++u) {
    const AttnUnit unit = attn_unit(a, u, group, M);
    const uint32_t kvh = unit.kvh, s = unit.s, heads = unit.g1 - unit.g0, items = heads * row_tiles;
    // Warp w takes item (round +) w % slots over key tiles part, part + parts, ... (part = w / slots).
    const uint32_t parts = halves_fit && items * kAttnKeyParts <= kWarps ? kAttnKeyParts : 1, slots = kWarps / parts;
    const uint32_t part = warp / slots;
    const uint32_t m_begin = unit.m0, m_end = M < m_begin + R ? M : m_begin + R;
    const uint32_t k0 = s * chunk, k1 = ctx_end < k0 + chunk ? ctx_end : k0 + chunk;
    // The keys that some row of the block may see: causal, within the window, within the split.
    const uint32_t p_first = p.step.pos + m_begin, p_last = p.step.pos + m_end - 1;
    uint32_t klo = window && p_first + 1 > window ? p_first + 1 - window : 0;
    klo = klo > k0 ? klo : k0;
    const uint32_t khi = k1 < p_last + 1 ? k1 : p_last + 1;
    const __nv_bfloat16* K = p.kv + ((size_t(ins.layer) * 2 * Hkv + kvh) * d.max_ctx) * D;
    const __nv_bfloat16* V = K + size_t(Hkv) * d.max_ctx * D;
    // Step `it` takes key tiles klo + (it * parts + q) * kAttnKeys, one for each part q.
    const uint32_t steps = klo < khi ? (khi - klo + parts * kAttnKeys - 1) / (parts * kAttnKeys) : 0;
    auto load_step = [&](uint32_t it, uint32_t buf) {
      constexpr uint32_t pieces = kAttnKeys * D / 8;  // 16-byte pieces of one tile
      for (uint32_t q = 0; q < parts; ++q) {
        const uint32_t kt = klo + (it * parts + q) * kAttnKeys;
        if (kt >= khi) break;
        for (uint32_t i = threadIdx.x; i < 2 * pieces; i += kThreads) {
          const bool is_v = i >= pieces;
          const uint32_t j = is_v ? i - pieces : i, r = j / (D / 8), c = (j % (D / 8)) * 8;
          const bool valid = kt + r < khi;  // zeros past the keys: 0 * garbage would be NaN
          cp_async16((is_v ? v_tile(buf, q) : k_tile(buf, q)) + r * kLd + c,
                     (is_v ? V : K) + size_t(valid ? kt + r : klo) * D + c, valid);
        }
      }
      asm volatile("cp.async.commit_group;" ::: "memory");
    };

    for (uint32_t round = 0; round < items; round += slots) {
      const uint32_t item = round + warp % slots;
      const bool active = item < items;
      const uint32_t g = unit.g0 + item % heads, hq = kvh * group + g;
      const uint32_t m0 = m_begin + (item / heads) * 16;  // this warp's 16 rows: m0 + lane/4 (+ 8)
      // Q as A fragments, scaled, rows past the block zero: in registers, or in shared memory
      // (kAttnQShared; each lane reads back only what it wrote, so no barrier).
      uint32_t qa[kAttnQShared<D> ? 1 : D / 16][4];
#pragma unroll
      for (uint32_t kd = 0; kd < D / 16; ++kd) {
        uint32_t f[4];
#pragma unroll
        for (int h = 0; h < 4; ++h) {  // a0: row r, cols c; a1: row r+8; a2: row r, cols c+8; a3: row r+8, c+8
          const uint32_t m = m0 + lane / 4 + (h % 2) * 8, col = kd * 16 + quad * 2 + (h / 2) * 8;
          float2 v = make_float2(0, 0);
          if (active && m < m_end) v = __ldcg(reinterpret_cast<const float2*>(p.arena + a.q + (size_t(m) * Hq + hq) * D + col));
          f[h] = pack_bf16(v.x * q_scale, v.y * q_scale);
        }
        if constexpr (kAttnQShared<D>)
          q_shared[kd * 32] = make_uint4(f[0], f[1], f[2], f[3]);
        else
#pragma unroll
          for (int h = 0; h < 4; ++h) qa[kd][h] = f[h];
      }
      if (round == 0) trace_phase(kPhaseRowLanded);  // Q loaded (builds with MK_TRACE_PHASES)
      float o[D / 8][4];
#pragma unroll
      for (uint32_t nb = 0; nb < D / 8; ++nb)
#pragma unroll
        for (int e = 0; e < 4; ++e) o[nb][e] = 0;
      float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0, 0};
      const uint32_t my_first = p.step.pos + m0, my_last = p.step.pos + (m0 + 15 < m_end - 1 ? m0 + 15 : m_end - 1);

      if (steps) load_step(0, 0);
      uint32_t buf = 0;
      for (uint32_t it = 0; it < steps; ++it, buf ^= 1) {
        const bool more = it + 1 < steps;
        if (more) {
          load_step(it + 1, buf ^ 1);
          asm volatile("cp.async.wait_group 1;" ::: "memory");
        } else {
          asm volatile("cp.async.wait_group 0;" ::: "memory");
        }
        sync_consumers();
        if (round == 0 && it == 0) trace_phase(kPhaseInput);  // the first key tiles in
        const uint32_t kt = klo + (it * parts + part) * kAttnKeys;
        if (active && kt < khi && kt <= my_last) {
          const __nv_bfloat16* ks = k_tile(buf, part);
          const __nv_bfloat16* vs = v_tile(buf, part);
          float sc[kAttnKeys / 8][4];
#pragma unroll
          for (uint32_t nb = 0; nb < kAttnKeys / 8; ++nb)
#pragma unroll
            for (int e = 0; e < 4; ++e) sc[nb][e] = 0;
#pragma unroll
          for (uint32_t kd = 0; kd < D / 16; ++kd) {
            uint32_t q[4];
            if constexpr (kAttnQShared<D>) {
              const uint4 v = q_shared[kd * 32];
              q[0] = v.x, q[1] = v.y, q[2] = v.z, q[3] = v.w;
            } else {
#pragma unroll
              for (int h = 0; h < 4; ++h) q[h] = qa[kd][h];
            }
#pragma unroll
            for (uint32_t jp = 0; jp < kAttnKeys / 16; ++jp) {
              uint32_t r[4];
              ldmatrix_x4(r, ks + (jp * 16 + (lane / 16) * 8 + lane % 8) * kLd + kd * 16 + ((lane / 8) % 2) * 8);
              mma_bf16(sc[2 * jp], q, r[0], r[1]);
              mma_bf16(sc[2 * jp + 1], q, r[2], r[3]);
            }
          }
          // Mask (causal, window, past the keys) where the tile needs it: only where it reaches
          // past the keys, the diagonal of this warp's first row or the window of its last (the
          // same for the whole warp); most tiles are whole. It had been a third of a step's
          // instructions. Then the online softmax per row (h: rows r, r + 8).
          const bool whole = kt + kAttnKeys <= khi && kt + kAttnKeys <= my_first + 1 && (!window || kt + window > my_last);
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            if (!whole) {
              const uint32_t pabs = p.step.pos + m0 + lane / 4 + h * 8;
              const uint32_t hi = khi < pabs + 1 ? khi : pabs + 1;  // keys [lo, hi) are seen
              const uint32_t lo = window && pabs + 1 > window ? pabs + 1 - window : 0;
#pragma unroll
              for (uint32_t nb = 0; nb < kAttnKeys / 8; ++nb)
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                  const uint32_t key = kt + nb * 8 + quad * 2 + e;
                  float& v = sc[nb][2 * h + e];
                  v = key >= lo && key < hi ? v : -INFINITY;
                }
            }
            float mx = -INFINITY;
#pragma unroll
            for (uint32_t nb = 0; nb < kAttnKeys / 8; ++nb) mx = fmaxf(mx, fmaxf(sc[nb][2 * h], sc[nb][2 * h + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xFFFFFFFFu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xFFFFFFFFu, mx, 2));
            const float mnew = fmaxf(mrow[h], mx);
            const float base = mnew == -INFINITY ? 0.0f : mnew;  // a row with no key yet keeps zeros
            const float scale = ex2(mrow[h] - base);
            float sum = 0;
#pragma unroll
            for (uint32_t nb = 0; nb < kAttnKeys / 8; ++nb)
#pragma unroll
              for (int e = 0; e < 2; ++e) {
                float& v = sc[nb][2 * h + e];
                v = ex2(v - base);
                sum += v;
              }
            lrow[h] = lrow[h] * scale + sum;  // this thread's share; the quad is summed at the end
            mrow[h] = mnew;
#pragma unroll
            for (uint32_t nb = 0; nb < D / 8; ++nb) o[nb][2 * h] *= scale, o[nb][2 * h + 1] *= scale;
          }
          // O += P . V: the score accumulators are already laid out as A fragments.
#pragma unroll
          for (uint32_t kk = 0; kk < kAttnKeys / 16; ++kk) {
            const uint32_t pa[4] = {pack_bf16(sc[2 * kk][0], sc[2 * kk][1]), pack_bf16(sc[2 * kk][2], sc[2 * kk][3]),
                                    pack_bf16(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                                    pack_bf16(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
            for (uint32_t dp = 0; dp < D / 16; ++dp) {
              uint32_t r[4];
              ldmatrix_x4_trans(r, vs + (kk * 16 + lane % 8 + ((lane / 8) % 2) * 8) * kLd + dp * 16 + (lane / 16) * 8);
              mma_bf16(o[2 * dp], pa, r[0], r[1]);
              mma_bf16(o[2 * dp + 1], pa, r[2], r[3]);
            }
          }
        }
        sync_consumers();  // this buffer is refilled two tiles on
      }
      if (round == 0) trace_phase(kPhaseWeights);  // every key tile: the phase tables' "weights"
      if (parts > 1) {
        // Part 1's warps hand their running max, sums and outputs to part 0's warp of the same item
        // through the idle tile buffers (value-major, a lane a bank), which merges them as one more
        // key tile of the online softmax.
        constexpr uint32_t kVals = D / 2 + 4;
        float* xch = reinterpret_cast<float*>(tiles) + size_t(warp % slots) * kVals * 32 + lane;
        if (active && part == 1) {
#pragma unroll
          for (uint32_t nb = 0; nb < D / 8; ++nb)
#pragma unroll
            for (int e = 0; e < 4; ++e) xch[(nb * 4 + e) * 32] = o[nb][e];
#pragma unroll
          for (int h = 0; h < 2; ++h) xch[(D / 2 + h) * 32] = mrow[h], xch[(D / 2 + 2 + h) * 32] = lrow[h];
        }
        sync_consumers();
        if (active && part == 0) {
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const float m1 = xch[(D / 2 + h) * 32], l1 = xch[(D / 2 + 2 + h) * 32];
            const float mnew = fmaxf(mrow[h], m1);
            const float base = mnew == -INFINITY ? 0.0f : mnew;  // rows with no key yet keep zeros
            const float s0 = ex2(mrow[h] - base), s1 = ex2(m1 - base);  // base 2, as the scores
            lrow[h] = lrow[h] * s0 + l1 * s1;
            mrow[h] = mnew;
#pragma unroll
            for (uint32_t nb = 0; nb < D / 8; ++nb)
#pragma unroll
              for (int e = 0; e < 2; ++e)
                o[nb][2 * h + e] = o[nb][2 * h + e] * s0 + xch[(nb * 4 + 2 * h + e) * 32] * s1;
          }
        }
        sync_consumers();  // the buffers are the next round's (or unit's) key tiles again
      }
      if (!active || part != 0) continue;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float l = lrow[h];
        l += __shfl_xor_sync(0xFFFFFFFFu, l, 1);
        l += __shfl_xor_sync(0xFFFFFFFFu, l, 2);
        const uint32_t m = m0 + lane / 4 + h * 8;
        if (m >= m_end) continue;
        const size_t out = ((size_t(s) * M + m) * Hq + hq) * D;
        const float inv = l > 0 ? 1.0f / l : 0.0f;
#pragma unroll
        for (uint32_t nb = 0; nb < D / 8; ++nb)
          store_act2(p, a.part_o, out + nb * 8 + quad * 2, o[nb][2 * h] * inv, o[nb][2 * h + 1] * inv,
                     ins.flags & kFlagBf16Out);
        // The log-sum-exp in natural units (the scores were in base 2).
        if (quad == 0)
          p.arena[a.part_lse + (size_t(s) * M + m) * Hq + hq] = l > 0 ? mrow[h] / kLog2e + logf(l) : -INFINITY;
      }
    }
  }
}

}  // namespace mk::cuda
