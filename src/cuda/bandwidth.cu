// A streaming-read kernel that measures the GPU's read bandwidth in the same run as a benchmark,
// so achieved fractions are ratios of two numbers taken minutes apart on the same card.
#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "cuda/cuda_backend.h"
#include "model/error.h"

namespace mk::cuda {
namespace {

__global__ void read_kernel(const uint4* __restrict__ src, size_t n, uint32_t* sink) {
  uint32_t acc = 0;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const uint4 v = __ldcs(src + i);  // streaming: read once, do not keep
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x12345678u) *sink = acc;  // keeps the loads alive; never true for our fill pattern
}

}  // namespace

double measure_read_bandwidth_gbps(size_t bytes) {
  const DeviceInfo info = query_device();
  if (!info.present) throw Error("no usable CUDA device: " + info.why_absent);
  bytes = std::min(bytes, info.free_bytes / 2) / 16 * 16;
  void* buf = nullptr;
  uint32_t* sink = nullptr;
  if (cudaMalloc(&buf, bytes) != cudaSuccess || cudaMalloc(&sink, 4) != cudaSuccess)
    throw Error("CUDA: cannot allocate the bandwidth test buffer");
  cudaMemset(buf, 0x5A, bytes);
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  std::vector<float> ms;
  for (int rep = 0; rep < 12; ++rep) {
    cudaEventRecord(a);
    read_kernel<<<info.sms * 8, 512>>>(static_cast<const uint4*>(buf), bytes / 16, sink);
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float t = 0;
    cudaEventElapsedTime(&t, a, b);
    if (rep >= 2) ms.push_back(t);  // the first runs warm up clocks and the TLB
  }
  const cudaError_t err = cudaGetLastError();
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaFree(buf);
  cudaFree(sink);
  if (err != cudaSuccess) throw Error(std::string("CUDA: bandwidth kernel: ") + cudaGetErrorString(err));
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return bytes / (ms[ms.size() / 2] * 1e-3) / 1e9;
}

}  // namespace mk::cuda
