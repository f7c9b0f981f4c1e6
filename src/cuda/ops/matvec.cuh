// The matvec family on the GPU: MatvecResidual, MatvecAct and LmHead (with its per-tile argmax).
// One warp per weight row, 16-byte streaming loads, inputs (normalized if fused) in shared memory.
#pragma once

#include "cuda/ops/weight_stream.cuh"

namespace mk::cuda {

constexpr int kMC = 8;             // input rows per pass: the accumulators a lane keeps
constexpr uint32_t kSmemHead = 256;  // floats at the start of shared memory for reductions

constexpr int kRows = 4;           // weight rows a warp streams at once

// One pass of a matvec tile over `mc` (<= MC) input rows already in shared memory at `x`. Gated
// (MatvecAct with a gate) passes take kRows/2 output rows at a time: up rows, then gate rows.
template <int MC>
__device__ void matvec_pass(const Instruction& ins, const KernelParams& p, const float* x, uint32_t m0,
                            uint32_t mc, float best[kMC], uint32_t best_idx[kMC]) {
  const MatvecArgs& a = ins.a.mv;
  const Opcode op = static_cast<Opcode>(ins.opcode);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const uint32_t K = a.in_dim;
  const __nv_bfloat16* W = weight(p, a.weight);
  const __nv_bfloat16* G = weight(p, a.gate);
  const __nv_bfloat16* bias = weight(p, a.bias);
  const __nv_bfloat16* gate_bias = weight(p, a.gate_bias);
  const Activation act = static_cast<Activation>(p.dims.activation);
  const uint32_t per = G ? kRows / 2 : kRows;
  for (uint32_t r0 = ins.tile_begin + warp * per; r0 < ins.tile_end; r0 += kWarps * per) {
    const uint32_t n_out = ins.tile_end - r0 < per ? ins.tile_end - r0 : per;
    const __nv_bfloat16* rows[kRows];
#pragma unroll
    for (int i = 0; i < kRows; ++i) {
      // Past the tile's end a slot repeats row r0: a few wasted loads beat a run-time index.
      const uint32_t r = r0 + (i % per < n_out ? i % per : 0);
      rows[i] = (G && i >= int(per) ? G : W) + size_t(r) * K;
    }
    float acc[kRows][MC];
    warp_dot_rows<kRows, MC>(rows, kRows, x, K, mc, acc);
#pragma unroll
    for (int i = 0; i < kRows; ++i) {
      if (i >= int(per) || i >= int(n_out)) break;
      const uint32_t r = r0 + i;
      const float b = bias ? bf(bias[r]) : 0.0f;
#pragma unroll
      for (int m = 0; m < MC; ++m) {
        if (m >= int(mc)) break;
        const float y = acc[i][m] + b;
        float* out = p.arena + a.out + size_t(m0 + m) * a.out_dim + r;
        if (op == Opcode::MatvecResidual) {
          if (lane == 0) *out = ld_act(out) + y;
        } else if (op == Opcode::MatvecAct) {
          const float v = G ? activate(acc[kRows / 2 + i][m] + (gate_bias ? bf(gate_bias[r]) : 0.0f), act) * y
                            : activate(y, act);
          if (lane == 0) *out = v;
        } else {
          if (lane == 0) *out = y;
          if (y > best[m]) best[m] = y, best_idx[m] = r;  // rows rise within a warp: first max wins
        }
      }
    }
  }
}

// Shared-memory plan of a one-row (decode) tile that streams its weights: x, the row results, then
// the cp.async ring. Returns the number of stages, or 0 when the tile must take the plain path.
__device__ __forceinline__ uint32_t stream_plan(const KernelParams& p, uint32_t K, uint32_t n_res, int n_mats,
                                                float** res, char** ring, float* smem) {
  if (K % 8 != 0 || K * 2 * n_mats > kStageBytes) return 0;
  const uint32_t res_off = (kSmemHead + K + 3) / 4 * 4;
  const uint32_t ring_off = (res_off + n_res + 3) / 4 * 4;
  const uint32_t free_bytes = p.smem_floats > ring_off ? (p.smem_floats - ring_off) * 4 : 0;
  const uint32_t stages = free_bytes / kStageBytes < kMaxStages ? free_bytes / kStageBytes : kMaxStages;
  *res = smem + res_off;
  *ring = reinterpret_cast<char*>(smem + ring_off);
  return stages >= 2 ? stages : 0;
}

// Decode (one input row): weights streamed through the shared-memory ring, then one thread per
// output row applies the op's epilogue (coalesced writes).
__device__ bool run_matvec_streamed(const Instruction& ins, const KernelParams& p, float* smem) {
  const MatvecArgs& a = ins.a.mv;
  const Opcode op = static_cast<Opcode>(ins.opcode);
  const __nv_bfloat16* G = weight(p, a.gate);
  const int n_mats = G ? 2 : 1;
  const uint32_t n = ins.tile_end - ins.tile_begin, K = a.in_dim;
  float* res;
  char* ring;
  const uint32_t stages = stream_plan(p, K, n * n_mats, n_mats, &res, &ring, smem);
  if (!p.stream_weights || a.rows != 1 || stages == 0) return false;
  float* x = smem + kSmemHead;
  load_rows(p, x, p.arena + a.in + size_t(a.in_row0) * K, 1, K, a.norm, smem);
  const __nv_bfloat16* mats[2] = {weight(p, a.weight), G};
  stream_rows(mats, n_mats, ins.tile_begin, n, K, x, res, ring, stages);
  const __nv_bfloat16* bias = weight(p, a.bias);
  const __nv_bfloat16* gate_bias = weight(p, a.gate_bias);
  const Activation act = static_cast<Activation>(p.dims.activation);
  float best = -INFINITY;
  uint32_t best_idx = 0xFFFFFFFFu;
  for (uint32_t t = threadIdx.x; t < n; t += kThreads) {
    const uint32_t r = ins.tile_begin + t;
    const float y = res[t] + (bias ? bf(bias[r]) : 0.0f);
    float* out = p.arena + a.out + r;
    if (op == Opcode::MatvecResidual) {
      *out = ld_act(out) + y;
    } else if (op == Opcode::MatvecAct) {
      *out = G ? activate(res[n + t] + (gate_bias ? bf(gate_bias[r]) : 0.0f), act) * y : activate(y, act);
    } else {
      *out = y;
      if (y > best) best = y, best_idx = r;  // a thread's rows rise: its first max wins
    }
  }
  if (op == Opcode::LmHead) {
    float* vals = res;  // the results are consumed: reuse them for the reduction
    uint32_t* idxs = reinterpret_cast<uint32_t*>(res + kThreads);
    __syncthreads();
    vals[threadIdx.x] = best;
    idxs[threadIdx.x] = best_idx;
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int t = 1; t < kThreads; ++t)
        if (idxs[t] != 0xFFFFFFFFu && (best_idx == 0xFFFFFFFFu || vals[t] > best || (vals[t] == best && idxs[t] < best_idx)))
          best = vals[t], best_idx = idxs[t];
      float* part = p.arena + a.partial + size_t(ins.tile_index) * 2;
      part[0] = best;
      part[1] = __uint_as_float(best_idx == 0xFFFFFFFFu ? ins.tile_begin : best_idx);
    }
  }
  __syncthreads();
  return true;
}

__device__ void run_matvec(const Instruction& ins, const KernelParams& p, float* smem) {
  if (run_matvec_streamed(ins, p, smem)) return;
  const MatvecArgs& a = ins.a.mv;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* scratch = smem;
  float* best_v = smem + 64;          // [kWarps][kMC]
  uint32_t* best_i = reinterpret_cast<uint32_t*>(smem + 128);
  float* x = smem + kSmemHead;
  const uint32_t K = a.in_dim;
  const uint32_t fit = (p.smem_floats - kSmemHead) / K;
  const uint32_t chunk = fit < kMC ? fit : kMC;  // >= 1: checked on the host
  for (uint32_t m0 = 0; m0 < a.rows; m0 += chunk) {
    const uint32_t mc = a.rows - m0 < chunk ? a.rows - m0 : chunk;
    load_rows(p, x, p.arena + a.in + size_t(a.in_row0 + m0) * K, mc, K, a.norm, scratch);
    float best[kMC];
    uint32_t best_idx[kMC];
#pragma unroll
    for (int m = 0; m < kMC; ++m) best[m] = -INFINITY, best_idx[m] = ins.tile_begin;
    // Decode has one row: a single-row instantiation keeps the accumulators few.
    if (mc == 1)
      matvec_pass<1>(ins, p, x, m0, mc, best, best_idx);
    else
      matvec_pass<kMC>(ins, p, x, m0, mc, best, best_idx);
    if (static_cast<Opcode>(ins.opcode) == Opcode::LmHead) {
      if (lane == 0)
        for (int m = 0; m < kMC; ++m) best_v[warp * kMC + m] = best[m], best_i[warp * kMC + m] = best_idx[m];
      __syncthreads();
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
    __syncthreads();  // x is overwritten by the next pass
  }
}

}  // namespace mk::cuda
