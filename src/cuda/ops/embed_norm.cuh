// Whole-op instructions on the GPU: Embed (token and learned position rows), the standalone Norm,
// and Argmax over the LM head tiles' partial maxima (which can feed the next step's token).
#pragma once

#include "cuda/device_common.cuh"

namespace mk::cuda {

// The tile's tokens (rows): a thread per 8 columns of a row, one 16-byte load of the table (and of
// the position table) each, when the width allows.
__device__ void run_embed(const Instruction& ins, const KernelParams& p, float* smem) {
  const EmbedArgs& a = ins.a.embed;
  const uint32_t H = p.dims.hidden;
  const __nv_bfloat16* table = weight(p, a.token_table);
  const __nv_bfloat16* pos = weight(p, a.pos_table);
  const uint32_t rows = ins.tile_end - ins.tile_begin;
  if (H % 8 == 0) {
    for (uint32_t i = threadIdx.x; i < rows * (H / 8); i += kThreads) {
      const uint32_t m = ins.tile_begin + i / (H / 8), h = i % (H / 8) * 8;
      const int32_t token = __ldcg(p.io + a.tokens + m);
      float v[8], w[8];
      unpack8(*reinterpret_cast<const uint4*>(table + paged_index(token, h, H)), v);
      if (pos) {
        unpack8(*reinterpret_cast<const uint4*>(pos + paged_index(p.step.pos + m, h, H)), w);
#pragma unroll
        for (int e = 0; e < 8; ++e) v[e] += w[e];
      }
      const uint32_t tag = output_tag(ins);  // the values' tag, kFlagTagOut (isa.h)
      float4* out = reinterpret_cast<float4*>(p.arena + a.out + size_t(m) * H + h);
      out[0] = make_float4(with_tag(v[0], tag), with_tag(v[1], tag), with_tag(v[2], tag), with_tag(v[3], tag));
      out[1] = make_float4(with_tag(v[4], tag), with_tag(v[5], tag), with_tag(v[6], tag), with_tag(v[7], tag));
    }
    return;
  }
  for (uint32_t i = threadIdx.x; i < rows * H; i += kThreads) {
    const uint32_t m = ins.tile_begin + i / H, h = i % H;
    const int32_t token = __ldcg(p.io + a.tokens + m);
    float v = bf(table[paged_index(token, h, H)]);
    if (pos) v += bf(pos[paged_index(p.step.pos + m, h, H)]);
    p.arena[a.out + size_t(m) * H + h] = with_tag(v, output_tag(ins));
  }
}

// A split projection's products (NormArgs::k_splits) added to the tile's rows `x` (n floats from
// row m0, in shared memory) in range order, and the sums stored back as the residual stream. Each
// thread takes the 16-byte pieces copy_act gave it, so no barrier is needed before; the ranges'
// loads of a piece are issued before its adds. (H % 8 == 0 where the graph splits.)
__device__ void add_split_products(const KernelParams& p, const NormArgs& a, float* x, uint32_t m0, uint32_t n) {
  const uint32_t H = p.dims.hidden;
  for (uint32_t e = threadIdx.x; e < n / 4; e += kThreads) {
    const size_t at = size_t(m0) * H + 4 * e;
    float4 v = reinterpret_cast<float4*>(x)[e];
#pragma unroll 4
    for (uint32_t s = 0; s < a.k_splits; ++s) {
      const float4 q = __ldcg(reinterpret_cast<const float4*>(p.arena + a.partial + size_t(s) * a.rows * H + at));
      v.x += q.x, v.y += q.y, v.z += q.z, v.w += q.w;
    }
    reinterpret_cast<float4*>(x)[e] = v;
    __stcg(reinterpret_cast<float4*>(p.arena + a.in + at), v);
  }
  sync_consumers();
}

// The tile's rows are copied into shared memory with batched loads (one L2 round trip for all of
// them); a warp per row takes its mean and 1/rms; then each thread loads the norm weight of its
// columns once, all loads at once, and writes those columns of every row: fp32, or bf16 for a
// prefill's matrix products (kFlagBf16Out). (A warp per row, reading x and the weight element by
// element beside its stores, paid an L2 round trip per element: 26 us for a tile of 4 rows, 0.8 ms
// of a 9.8 ms prefill of 512 tokens, H200.)
__device__ void run_norm(const Instruction& ins, const KernelParams& p, float* smem) {
  const NormArgs& a = ins.a.norm;
  const uint32_t H = p.dims.hidden;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const bool layer = p.dims.norm_kind == uint8_t(NormKind::Layer), to_bf16 = ins.flags & kFlagBf16Out;
  const __nv_bfloat16* w = weight(p, a.norm.weight);
  const __nv_bfloat16* b = weight(p, a.norm.bias);
  constexpr uint32_t kMaxRows = 64, kCols = 8;  // rows per pass (their stats fit the head); columns per thread
  float* stats = smem + kSmemHead - 2 * kMaxRows;  // (mean, 1/rms) per row, past load_rows' scratch
  float* x = smem + kSmemHead;
  uint32_t fit = (p.smem_floats - kSmemHead) / H;  // >= 1: checked on the host
  fit = fit < kMaxRows ? fit : kMaxRows;
  for (uint32_t m0 = ins.tile_begin; m0 < ins.tile_end; m0 += fit) {
    const uint32_t mc = ins.tile_end - m0 < fit ? ins.tile_end - m0 : fit;
    load_rows(p, x, p.arena + a.in + size_t(m0) * H, mc, H, InNorm{kNone, kNone}, smem);
    if (a.k_splits > 1) add_split_products(p, a, x, m0, mc * H);
    for (uint32_t m = warp; m < mc; m += kWarps) {
      const float* row = x + size_t(m) * H;
      float mean = 0;
      if (layer) {
        float s = 0;
        for (uint32_t i = lane; i < H; i += 32) s += row[i];
        mean = warp_sum(s) / H;
      }
      float ss = 0;
      for (uint32_t i = lane; i < H; i += 32) ss += (row[i] - mean) * (row[i] - mean);
      const float inv = rsqrtf(warp_sum(ss) / H + p.dims.norm_eps);
      if (lane == 0) stats[2 * m] = mean, stats[2 * m + 1] = inv;
    }
    sync_consumers();
    // Eight consecutive columns a thread where the rows and the weights allow it: 16-byte weight
    // loads and stores (a bf16 row of 2048 is then one store a thread), conflict-free float4 reads.
    const bool vec = H % 8 == 0 && reinterpret_cast<uintptr_t>(w) % 16 == 0 && reinterpret_cast<uintptr_t>(b) % 16 == 0;
    for (uint32_t c0 = 8 * threadIdx.x; vec && c0 < H; c0 += 8 * kThreads) {
      float wv[8], bv[8];
      if (w)
        unpack8(*reinterpret_cast<const uint4*>(w + c0), wv);
      else
        for (float& v : wv) v = 1.0f;
      if (b)
        unpack8(*reinterpret_cast<const uint4*>(b + c0), bv);
      else
        for (float& v : bv) v = 0.0f;
      for (uint32_t m = 0; m < mc; ++m) {
        const float mean = stats[2 * m], inv = stats[2 * m + 1];
        const float4 x0 = *reinterpret_cast<const float4*>(x + m * H + c0), x1 = *reinterpret_cast<const float4*>(x + m * H + c0 + 4);
        const float xs[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
        float y[8];
#pragma unroll
        for (uint32_t e = 0; e < 8; ++e) y[e] = (xs[e] - mean) * inv * wv[e] + bv[e];
        const size_t at = size_t(m0 + m) * H + c0;
        if (to_bf16) {
          *reinterpret_cast<uint4*>(bf16_act(p, a.out) + at) =
              make_uint4(pack_bf16(y[0], y[1]), pack_bf16(y[2], y[3]), pack_bf16(y[4], y[5]), pack_bf16(y[6], y[7]));
        } else {
          reinterpret_cast<float4*>(p.arena + a.out + at)[0] = make_float4(y[0], y[1], y[2], y[3]);
          reinterpret_cast<float4*>(p.arena + a.out + at)[1] = make_float4(y[4], y[5], y[6], y[7]);
        }
      }
    }
    for (uint32_t i0 = threadIdx.x; !vec && i0 < H; i0 += kThreads * kCols) {
      float wv[kCols], bv[kCols];
#pragma unroll
      for (uint32_t j = 0; j < kCols; ++j) {
        const uint32_t i = i0 + j * kThreads;
        wv[j] = w && i < H ? bf(w[i]) : 1.0f;
        bv[j] = b && i < H ? bf(b[i]) : 0.0f;
      }
      for (uint32_t m = 0; m < mc; ++m) {
        const float mean = stats[2 * m], inv = stats[2 * m + 1];
#pragma unroll
        for (uint32_t j = 0; j < kCols; ++j) {
          const uint32_t i = i0 + j * kThreads;
          if (i < H) store_act(p, a.out, size_t(m0 + m) * H + i, (x[m * H + i] - mean) * inv * wv[j] + bv[j], to_bf16);
        }
      }
    }
    sync_consumers();  // x and the stats are overwritten by the next rows
  }
}

// Row m's next token: to its io slot and, for the last row, to the greedy loop's feedback slot and
// history when the launch asks.
__device__ __forceinline__ void emit_token(const KernelParams& p, uint32_t out_token, uint32_t m, uint32_t rows,
                                           int32_t token) {
#if MK_UNSAFE_NO_WAITS
  // A timing-only build may take the argmax of logits not written yet (the arena's poison): keep
  // the next step's embedding and the host's checks within the vocabulary.
  if (token < 0 || uint32_t(token) >= p.dims.vocab) token = 0;
#endif
  p.io[out_token + m] = token;
  if (m + 1 == rows) {
    if (p.feedback_slot != kNone) p.io[p.feedback_slot] = token;
    if (p.history) p.history[p.history_index] = token;
  }
}

// The best of the LM head tiles' candidates, per row: the largest logit, the lowest index among
// equals. A thread per candidate, then the warps' bests (warp_argmax), then the block's: a serial
// pass of thread 0 over every thread's best took ~14 us at the end of each decode step (H200, traced).
__device__ void run_argmax(const Instruction& ins, const KernelParams& p, float* smem) {
  const ArgmaxArgs& a = ins.a.argmax;
  const uint32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* vals = smem;
  uint32_t* idxs = reinterpret_cast<uint32_t*>(smem + kWarps);
  for (uint32_t m = 0; m < a.rows; ++m) {
    // No candidate: -inf at the largest index, which any candidate beats or ties below.
    float v = -INFINITY;
    uint32_t i = 0xFFFFFFFFu;
    for (uint32_t t = threadIdx.x; t < a.num_partials; t += kThreads) {
      const float* part = p.arena + a.partial + (size_t(t) * a.rows + m) * 2;
      const float pv = ld_act(part);
      const uint32_t pi = __float_as_uint(ld_act(part + 1));
      if (pv > v || (pv == v && pi < i)) v = pv, i = pi;
    }
    warp_argmax(v, i);
    if (lane == 0) vals[warp] = v, idxs[warp] = i;
    sync_consumers();
    if (warp == 0) {
      v = lane < kWarps ? vals[lane] : -INFINITY;
      i = lane < kWarps ? idxs[lane] : 0xFFFFFFFFu;
      warp_argmax(v, i);
      if (lane == 0) {
        if (a.best != kNone) {
          // Tensor parallelism: this rank's candidate, in the whole vocabulary's numbering, for
          // ArgmaxRanks.
          p.arena[a.best + 2 * m] = v;
          p.arena[a.best + 2 * m + 1] = __uint_as_float(i + a.index_offset);
        } else {
          emit_token(p, a.out_token, m, a.rows, static_cast<int32_t>(i));
        }
      }
    }
    sync_consumers();
  }
}

}  // namespace mk::cuda
