// How fast do the decode consumers take a page? This runs the megakernel's own consumer loop
// (pipe_rows, ops/weight_pipe.cuh) on one block per SM, fed by a producer warp as the megakernel's
// is, from one of three sources: nowhere (the producer completes each page without copying, so the
// time per page is the consumers' and the barriers' own), a small buffer that every SM reads (it
// stays in L2), or a distinct region per SM in HBM (the memory-bound case, for reference). The spans
// are shaped like the 1B model's decode tiles: gate/up (8 groups of 2 parts, K = 2048), down (2
// groups, K = 8192), o_proj (2 groups, K = 2048) and the LM head (120 groups, K = 2048).
//
// To try another page width, build with an include folder holding a cuda/paged_weights.h of another
// kPageCols ahead of -Isrc (docs/PERFORMANCE.md, session 11).
//
// Build (from the repository root):
//   nvcc -O3 -std=c++20 -Isrc -Iinclude -gencode=arch=compute_90a,code=sm_90a bench/consumer_rate.cu -o consumer_rate
// Run:   ./consumer_rate      (one line per span shape and source: us a page and KB/us per SM)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "cuda/ops/weight_pipe.cuh"

namespace {

using namespace mk::cuda;

constexpr uint32_t kRingPages = (192 << 10) / kPageBytes;  // 192 KB, as the 1B model's decode ring

struct Shape {
  const char* name;
  uint32_t groups, parts, K;
  __host__ __device__ uint32_t pages() const { return groups * parts * ((K + kPageCols - 1) / kPageCols); }
  // The ops' part of shared memory: x (K floats) then the sums, 1 KB aligned (the ring follows).
  __host__ __device__ uint32_t ops_floats() const { return (K + 4 * kRedGroupFloats + 255) / 256 * 256; }
};

// One block per SM: warps [0, kWarps) consume `reps` spans of `shape` each, warp kWarps produces
// their pages from src: page k of the block's stream is page (k % src_pages) of its source region.
// The rest of the producer warpgroup exits at once, as in the megakernel.
__global__ void __launch_bounds__(kBlockThreads, 1)
    consumer_kernel(const char* src, size_t region_bytes, uint32_t src_pages, Shape shape, uint32_t reps,
                    bool no_copy, float* sink) {
  extern __shared__ __align__(1024) float4 dynamic_smem[];
  float* smem = reinterpret_cast<float*>(dynamic_smem);
  __shared__ uint64_t full[kMaxPages], empty[kMaxPages];
  Pipe pipe;
  pipe.pages = reinterpret_cast<char*>(smem + shape.ops_floats());
  pipe.full = full;
  pipe.empty = empty;
  pipe.n_pages = kRingPages;
  pipe.bulk = kHasBulkCopy;
  float* x = smem;
  for (uint32_t i = threadIdx.x; i < shape.K; i += blockDim.x) x[i] = 1.0f / float(i + 1);
  if (threadIdx.x == 0) pipe_init(pipe);
  __syncthreads();
  const char* base = src + blockIdx.x * region_bytes;
  // No setmaxnreg here, unlike the megakernel: this kernel needs 89 registers without it and no
  // spills, while with it ptxas capped it at 168 and spilled 336 bytes inside the page loop (to
  // local memory that misses L1 with the ring's shared memory carved out), which made a 16 KB page
  // cost 1.39 us "from nowhere" against 0.39-0.43 before (session 13). The megakernel's page loop
  // has no spills either way, so measuring the loop without them is the faithful choice.
  if (threadIdx.x >= kThreads + 32) return;  // the producer warpgroup's idle warps
  if (threadIdx.x >= kThreads) {
    const uint32_t lane = threadIdx.x % 32;
    for (uint32_t k = 0; k < reps * shape.pages(); ++k, pipe.advance()) {
      mbar_wait(&pipe.empty[pipe.slot], pipe.parity() ^ 1);
      if (lane == 0 && no_copy) {
        mbar_arrive(&pipe.full[pipe.slot]);  // the page as it was: the consumers' cost alone
      } else if (lane == 0) {
        mbar_expect_tx(&pipe.full[pipe.slot], kPageBytes);
        bulk_copy(pipe.page(), base + size_t(k % src_pages) * kPageBytes, kPageBytes, &pipe.full[pipe.slot]);
      }
      __syncwarp();
    }
    return;
  }
  PipeSpan s{};
  s.parts = shape.parts;
  s.groups = shape.groups;
  s.K = shape.K;
  s.rows = shape.groups * kPageRows;
  float acc = 0.0f;
  for (uint32_t r = 0; r < reps; ++r)
    pipe_rows(pipe, s, x, smem + shape.K, 4 * kRedGroupFloats,
              [&](uint32_t, uint32_t, float a, float b) { acc += a + b; });
  if (acc == 1234.5f) *sink = acc;
}

}  // namespace

int main() {
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  const size_t region = 4u << 20;  // per SM, in HBM
  char* buf;
  float* sink;
  cudaMalloc(&buf, region * sms);
  cudaMalloc(&sink, 4);
  cudaMemset(buf, 0x3c, region * sms);
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  std::printf("%s, %d SMs; ring of %u pages of %u KB\n", prop.name, sms, kRingPages, kPageBytes / 1024);
  const Shape shapes[] = {{"gate/up (8 groups x 2 parts, K 2048)", 8, 2, 2048},
                          {"down (2 groups, K 8192)", 2, 1, 8192},
                          {"o_proj (2 groups, K 2048)", 2, 1, 2048},
                          {"LM head (120 groups, K 2048)", 120, 1, 2048}};
  for (const Shape& shape : shapes) {
    for (int source = 2; source >= 0; --source) {  // 2: no copies (pages as they were), 1: L2, 0: HBM
      const bool from_l2 = source == 1;
      const uint32_t pages = shape.pages();
      const uint32_t reps = std::max(1u, 4096 / pages);
      // L2: every SM reads the same 16 pages (256 KB); HBM: its own 4 MB.
      const size_t region_bytes = from_l2 ? 0 : region;
      const uint32_t src_pages = from_l2 ? 16 : uint32_t(region / kPageBytes);
      const size_t smem = size_t(shape.ops_floats()) * 4 + kRingPages * kPageBytes;
      cudaFuncSetAttribute(consumer_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
      std::vector<float> t;
      for (int rep = 0; rep < 7; ++rep) {
        cudaEventRecord(a);
        consumer_kernel<<<sms, kBlockThreads, smem>>>(buf, region_bytes, src_pages, shape, reps, source == 2, sink);
        cudaEventRecord(b);
        cudaEventSynchronize(b);
        float ms;
        cudaEventElapsedTime(&ms, a, b);
        if (rep >= 2) t.push_back(ms);
      }
      const cudaError_t err = cudaGetLastError();
      std::sort(t.begin(), t.end());
      const double us_per_page = t[t.size() / 2] * 1e3 / (double(reps) * pages);
      std::printf("%-38s from %-19s: %.3f us a page per SM, %.1f KB/us per SM (%.0f GB/s in all) %s\n", shape.name,
                  source == 2 ? "nowhere (no copies)" : from_l2 ? "L2" : "HBM", us_per_page, kPageBytes / 1024.0 / us_per_page,
                  sms * kPageBytes / us_per_page / 1e3, err == cudaSuccess ? "" : cudaGetErrorString(err));
    }
  }
  return 0;
}
