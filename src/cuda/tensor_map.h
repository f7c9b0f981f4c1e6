// Host side of the TMA (sm_90+): a tensor map of a row-major bf16 matrix as prefill's GEMM passes
// read their activations (ops/mma_gemm.cuh, gemm_pass_tma): boxes of a few rows by up to 64
// columns, 128-byte swizzled, zeros past the matrix's edges. The encoder is the driver's
// cuTensorMapEncodeTiled, found through the runtime (no link against libcuda).
#pragma once

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace mk::cuda {

// Encodes into `map` the matrix at `base` ([rows][cols] bf16, 16-byte aligned, cols % 8 == 0) in
// boxes of box_rows by box_cols (box_cols * 2 <= 128 bytes). Returns false where the driver has no
// encoder or refuses the layout: the caller then keeps its other path.
inline bool encode_bf16_tensor_map(CUtensorMap* map, const void* base, uint64_t rows, uint64_t cols,
                                   uint32_t box_rows, uint32_t box_cols) {
  static const PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found) !=
            cudaSuccess ||
        found != cudaDriverEntryPointSuccess)
      return PFN_cuTensorMapEncodeTiled_v12000(nullptr);
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  if (!encode || reinterpret_cast<uintptr_t>(base) % 16 != 0 || cols % 8 != 0) return false;
  const cuuint64_t dims[2] = {cols, rows}, strides[1] = {cols * 2};
  const cuuint32_t box[2] = {box_cols, box_rows}, steps[2] = {1, 1};
  return encode(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(base), dims, strides, box, steps,
                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

}  // namespace mk::cuda
