// Tensor-core building blocks (sm_80+): ldmatrix fragments from shared memory, the bf16
// m16n8k16 mma with fp32 accumulation. Prefill tiles (ops/mma_gemm.cuh,
// ops/attention_mma.cuh) and the decode matvecs' page consumers (ops/weight_pipe.cuh) share them.
#pragma once

#include "cuda/device_common.cuh"

namespace mk::cuda {

__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// The same, each 8x8 matrix transposed: B fragments from a row-major [k][n] tile (attention's V).
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// Not volatile: a pure function of its registers, which the compiler may schedule freely (the
// ldmatrix stay volatile, ordered after the waits that make their shared memory valid).
__device__ __forceinline__ void mma_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

}  // namespace mk::cuda
