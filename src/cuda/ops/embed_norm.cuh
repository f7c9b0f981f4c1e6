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
      float4* out = reinterpret_cast<float4*>(p.arena + a.out + size_t(m) * H + h);
      out[0] = make_float4(v[0], v[1], v[2], v[3]);
      out[1] = make_float4(v[4], v[5], v[6], v[7]);
    }
    return;
  }
  for (uint32_t i = threadIdx.x; i < rows * H; i += kThreads) {
    const uint32_t m = ins.tile_begin + i / H, h = i % H;
    const int32_t token = __ldcg(p.io + a.tokens + m);
    float v = bf(table[paged_index(token, h, H)]);
    if (pos) v += bf(pos[paged_index(p.step.pos + m, h, H)]);
    p.arena[a.out + size_t(m) * H + h] = v;
  }
}

__device__ void run_norm(const Instruction& ins, const KernelParams& p, float* smem) {
  const NormArgs& a = ins.a.norm;
  const uint32_t H = p.dims.hidden;
  for (uint32_t m = 0; m < p.dims.n_tokens; ++m) {
    load_rows(p, smem + 64, p.arena + a.in + size_t(m) * H, 1, H, a.norm, smem);
    for (uint32_t i = threadIdx.x; i < H; i += kThreads) p.arena[a.out + size_t(m) * H + i] = smem[64 + i];
    sync_consumers();
  }
}

// Row m's next token: to its io slot and, for the last row, to the greedy loop's feedback slot and
// history when the launch asks.
__device__ __forceinline__ void emit_token(const KernelParams& p, uint32_t out_token, uint32_t m, uint32_t rows,
                                           int32_t token) {
  p.io[out_token + m] = token;
  if (m + 1 == rows) {
    if (p.feedback_slot != kNone) p.io[p.feedback_slot] = token;
    if (p.history) p.history[p.history_index] = token;
  }
}

__device__ void run_argmax(const Instruction& ins, const KernelParams& p, float* smem) {
  const ArgmaxArgs& a = ins.a.argmax;
  float* vals = smem;
  uint32_t* idxs = reinterpret_cast<uint32_t*>(smem + kThreads);
  for (uint32_t m = 0; m < a.rows; ++m) {
    float v = -INFINITY;
    uint32_t i = 0xFFFFFFFFu;
    for (uint32_t t = threadIdx.x; t < a.num_partials; t += kThreads) {
      const float* part = p.arena + a.partial + (size_t(t) * a.rows + m) * 2;
      const float pv = ld_act(part);
      const uint32_t pi = __float_as_uint(ld_act(part + 1));
      if (pv > v || (pv == v && pi < i) || i == 0xFFFFFFFFu) v = pv, i = pi;
    }
    vals[threadIdx.x] = v;
    idxs[threadIdx.x] = i;
    sync_consumers();
    if (threadIdx.x == 0) {
      for (int t = 1; t < kThreads; ++t)
        if (idxs[t] != 0xFFFFFFFFu && (vals[t] > v || (vals[t] == v && idxs[t] < i) || i == 0xFFFFFFFFu))
          v = vals[t], i = idxs[t];
      if (a.best != kNone) {
        // Tensor parallelism: this rank's candidate, in the whole vocabulary's numbering, for
        // ArgmaxRanks.
        p.arena[a.best + 2 * m] = v;
        p.arena[a.best + 2 * m + 1] = __uint_as_float(i + a.index_offset);
      } else {
        emit_token(p, a.out_token, m, a.rows, static_cast<int32_t>(i));
      }
    }
    sync_consumers();
  }
}

}  // namespace mk::cuda
