#include "cuda/rank_exchange.h"

#include "model/error.h"

namespace mk::cuda {
namespace {

// A thread per element: it alone reads and writes that element on every rank, so the sum is made
// in place without a second buffer.
__global__ void exchange_sum(float* const* arenas, uint32_t ranks, uint32_t offset, uint32_t floats) {
  const uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= floats) return;
  float sum = 0.0f;
  for (uint32_t r = 0; r < ranks; ++r) sum += __ldcg(arenas[r] + offset + i);
  for (uint32_t r = 0; r < ranks; ++r) arenas[r][offset + i] = sum;
}

__global__ void exchange_gather(float* const* arenas, uint32_t ranks, uint32_t offset, uint32_t floats) {
  const uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;  // an element of every rank's slice
  const uint32_t slice = floats / ranks;
  if (i >= slice) return;
  for (uint32_t src = 0; src < ranks; ++src) {
    const float v = __ldcg(arenas[src] + offset + src * slice + i);
    for (uint32_t dst = 0; dst < ranks; ++dst)
      if (dst != src) arenas[dst][offset + src * slice + i] = v;
  }
}

}  // namespace

void launch_rank_exchange(float* const* arenas, uint32_t ranks, const Exchange& x, cudaStream_t stream) {
  constexpr uint32_t kThreadsPerBlock = 256;
  const uint32_t n = x.kind == Exchange::Kind::Sum ? x.floats : x.floats / ranks;
  const uint32_t blocks = (n + kThreadsPerBlock - 1) / kThreadsPerBlock;
  if (blocks == 0) return;
  if (x.kind == Exchange::Kind::Sum)
    exchange_sum<<<blocks, kThreadsPerBlock, 0, stream>>>(arenas, ranks, x.offset, x.floats);
  else
    exchange_gather<<<blocks, kThreadsPerBlock, 0, stream>>>(arenas, ranks, x.offset, x.floats);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw Error(std::string("CUDA: exchanging between the ranks' launches: ") + cudaGetErrorString(err));
}

}  // namespace mk::cuda
