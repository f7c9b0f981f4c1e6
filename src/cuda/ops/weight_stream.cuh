// Streams a tile's weight rows through a ring of shared-memory stages with cp.async (sm_80+), so
// each SM keeps tens of kilobytes of loads in flight while it computes on the stage that landed:
// a decode matvec is bound by bytes in flight per SM, not by arithmetic.
#pragma once

#include "cuda/device_common.cuh"

namespace mk::cuda {

constexpr uint32_t kStageBytes = 32 * 1024;
constexpr uint32_t kMaxStages = 6;

__device__ __forceinline__ void cp_async16(void* smem_dst, const void* gmem_src) {
  const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem_dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(gmem_src));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N)); }

// Dot products of rows [r0, r0 + n) of one or two bf16 matrices (`mats` of them, both [*, K]) with
// the fp32 vector x (shared memory), written to res[mat * n + row]. `ring` is shared memory of
// `stages` * kStageBytes. Needs K % 8 == 0 and a K-row to fit a stage. Ends with a barrier.
__device__ void stream_rows(const __nv_bfloat16* const mats[2], int n_mats, uint32_t r0, uint32_t n, uint32_t K,
                            const float* x, float* res, char* ring, uint32_t stages) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const uint32_t row_bytes = K * 2;
  const uint32_t rows_per_stage = kStageBytes / (row_bytes * n_mats);  // >= 1: checked by the caller
  const uint32_t blocks = (n + rows_per_stage - 1) / rows_per_stage;
  auto issue = [&](uint32_t b) {
    if (b < blocks) {
      const uint32_t first = b * rows_per_stage;
      const uint32_t count = n - first < rows_per_stage ? n - first : rows_per_stage;
      char* stage = ring + (b % stages) * kStageBytes;
      const uint32_t chunks = count * row_bytes / 16;  // 16-byte pieces per matrix
      for (int mtx = 0; mtx < n_mats; ++mtx) {
        const char* src = reinterpret_cast<const char*>(mats[mtx] + size_t(r0 + first) * K);
        char* dst = stage + mtx * rows_per_stage * row_bytes;
        for (uint32_t c = threadIdx.x; c < chunks; c += kThreads) cp_async16(dst + c * 16, src + c * 16);
      }
    }
    cp_async_commit();  // an empty group keeps the counting uniform
  };
  for (uint32_t b = 0; b + 1 < stages; ++b) issue(b);
  for (uint32_t b = 0; b < blocks; ++b) {
    issue(b + stages - 1);
    // Everything but the newest stages-1 groups has landed: block b is complete for this thread.
    switch (stages) {
      case 2: cp_async_wait<1>(); break;
      case 3: cp_async_wait<2>(); break;
      case 4: cp_async_wait<3>(); break;
      case 5: cp_async_wait<4>(); break;
      default: cp_async_wait<5>(); break;
    }
    __syncthreads();
    const uint32_t first = b * rows_per_stage;
    const uint32_t count = n - first < rows_per_stage ? n - first : rows_per_stage;
    const char* stage = ring + (b % stages) * kStageBytes;
    for (uint32_t v = warp; v < count * n_mats; v += kWarps) {
      const uint32_t mtx = v / count, row = v % count;
      const __nv_bfloat16* w = reinterpret_cast<const __nv_bfloat16*>(stage + (mtx * rows_per_stage + row) * row_bytes);
      float acc = 0;
      for (uint32_t k = lane * 8; k < K; k += 256) {
        float wf[8];
        unpack8(*reinterpret_cast<const uint4*>(w + k), wf);
        const float4 a = *reinterpret_cast<const float4*>(x + k);
        const float4 c = *reinterpret_cast<const float4*>(x + k + 4);
        acc += wf[0] * a.x + wf[1] * a.y + wf[2] * a.z + wf[3] * a.w + wf[4] * c.x + wf[5] * c.y + wf[6] * c.z +
               wf[7] * c.w;
      }
      acc = warp_sum(acc);
      if (lane == 0) res[mtx * n + first + row] = acc;
    }
    __syncthreads();  // the stage is refilled by the next issue
  }
}

}  // namespace mk::cuda
