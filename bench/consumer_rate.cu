// How fast do the decode consumers take a page? This runs the megakernel's own consumer loop
// (pipe_rows, ops/weight_pipe.cuh) on one block per SM, fed by a producer warp as the megakernel's
// is, two ways:
//
// Streaming, from one of three sources: nowhere (the producer completes each page without copying,
// so the time per page is the consumers' and the barriers' own), a small buffer that every SM reads
// (it stays in L2), or a distinct region per SM in HBM (the memory-bound case, for reference). The
// spans are shaped like the 1B model's decode tiles: gate/up (8 groups of 2 parts, K = 2048), down
// (2 groups, K = 8192), o_proj (2 groups, K = 2048) and the LM head (120 groups, K = 2048).
//
// Resident: every page of one span already in the ring when the consumers start it, as QKV's and
// o_proj's are in the decode step (their pages stream in while the tile waits for its input), timed
// from pipe_rows' start to its end by the SM's clock. That is those tiles' weights phase on the
// critical path: 8 pages took QKV 3.65 us in the megakernel (H100, session 45's phases trace),
// 0.45 us a page, where 16 KB of shared memory reads take ~0.1 us. Shapes: the 1B's QKV tile (2
// groups of 2 parts, K = 2048: 8 pages), o_proj's (2 groups: 4 pages), down's (1 group, K = 8192),
// Qwen2.5-1.5B's QKV (K = 1536: pages of 16 and 8 KB).
//
// To try another page width, build with an include folder holding a cuda/paged_weights.h of another
// kPageCols ahead of -Isrc (docs/PERFORMANCE.md, session 11).
//
// Build (from the repository root):
//   nvcc -O3 -std=c++20 -Isrc -Iinclude -gencode=arch=compute_90a,code=sm_90a bench/consumer_rate.cu -o consumer_rate
// Run:   ./consumer_rate      (one line per span shape and source: us a page and KB/us per SM; then
//                             the resident spans: cycles and us a span and a page)
//        ./consumer_rate --resident-only   (the resident spans alone)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
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

// The block's ring (kRingPages past the ops' floats) on `full` and `empty`, initialized, and x, the
// input row: the two kernels' common start. Every thread of the block calls it.
__device__ Pipe ring_for(const Shape& shape, float* smem, uint64_t* full, uint64_t* empty) {
  Pipe pipe;
  pipe.pages = reinterpret_cast<char*>(smem + shape.ops_floats());
  pipe.full = full;
  pipe.empty = empty;
  pipe.n_pages = kRingPages;
  pipe.bulk = kHasBulkCopy;
  for (uint32_t i = threadIdx.x; i < shape.K; i += blockDim.x) smem[i] = 1.0f / float(i + 1);
  if (threadIdx.x == 0) pipe_init(pipe);
  __syncthreads();
  return pipe;
}

__device__ PipeSpan span_of(const Shape& shape) {
  PipeSpan s{};
  s.parts = shape.parts;
  s.groups = shape.groups;
  s.K = shape.K;
  s.rows = shape.groups * kPageRows;
  return s;
}

// One block per SM: warps [0, kWarps) consume `reps` spans of `shape` each, warp kWarps produces
// their pages from src: page k of the block's stream is page (k % src_pages) of its source region.
// The rest of the producer warpgroup exits at once, as in the megakernel.
__global__ void __launch_bounds__(kBlockThreads, 1)
    consumer_kernel(const char* src, size_t region_bytes, uint32_t src_pages, Shape shape, uint32_t reps,
                    bool no_copy, float* sink) {
  extern __shared__ __align__(1024) float4 dynamic_smem[];
  float* smem = reinterpret_cast<float*>(dynamic_smem);
  __shared__ uint64_t full[kMaxPages], empty[kMaxPages];
  Pipe pipe = ring_for(shape, smem, full, empty);
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
  const PipeSpan s = span_of(shape);
  float acc = 0.0f;
  for (uint32_t r = 0; r < reps; ++r)
    pipe_rows(pipe, s, smem, smem + shape.K, 4 * kRedGroupFloats,
              [&](uint32_t, uint32_t, float a, float b) { acc += a + b; });
  if (acc == 1234.5f) *sink = acc;
}

// The consumers and the producer warp meet here (the producer warpgroup's other warps have exited).
__device__ __forceinline__ void sync_with_producer() {
  asm volatile("bar.sync 2, %0;" ::"n"(kThreads + 32) : "memory");
}

// Resident spans: `reps` times, the producer warp completes every page of one span of `shape`
// (<= kRingPages; without copying: the time is the consumers' alone, and a page's contents do not
// change what ldmatrix and mma cost), then the consumers run pipe_rows on it, timed by thread 0 on
// the SM's clock from its start to the moment every consumer thread is done. cycles[block]: the sum.
__global__ void __launch_bounds__(kBlockThreads, 1)
    resident_kernel(Shape shape, uint32_t reps, unsigned long long* cycles, float* sink) {
  extern __shared__ __align__(1024) float4 dynamic_smem[];
  float* smem = reinterpret_cast<float*>(dynamic_smem);
  __shared__ uint64_t full[kMaxPages], empty[kMaxPages];
  Pipe pipe = ring_for(shape, smem, full, empty);
  if (threadIdx.x >= kThreads + 32) return;
  const bool producer = threadIdx.x >= kThreads;
  const PipeSpan s = span_of(shape);
  unsigned long long total = 0;
  float acc = 0.0f;
  for (uint32_t r = 0; r < reps; ++r) {
    if (producer) {
      for (uint32_t k = 0; k < shape.pages(); ++k, pipe.advance()) {
        mbar_wait(&pipe.empty[pipe.slot], pipe.parity() ^ 1);  // the last span's consumers are done with it
        if (threadIdx.x % 32 == 0) mbar_arrive(&pipe.full[pipe.slot]);
        __syncwarp();
      }
    }
    sync_with_producer();  // the span's pages are all in the ring
    if (!producer) {
      const long long t0 = clock64();
      pipe_rows(pipe, s, smem, smem + shape.K, 4 * kRedGroupFloats,
                [&](uint32_t, uint32_t, float a, float b) { acc += a + b; });
      // pipe_rows ends on the consumers' barrier: every consumer thread is done when thread 0 reads the clock.
      if (threadIdx.x == 0) total += clock64() - t0;
    }
  }
  if (threadIdx.x == 0) cycles[blockIdx.x] = total;
  if (acc == 1234.5f) *sink = acc;
}

}  // namespace

int main(int argc, char** argv) {
  // --resident-only: the resident spans alone, for builds whose page waits are edited out (the
  // streaming shapes then read pages that have not landed, which on the H100 ended the context).
  const bool resident_only = argc > 1 && std::strcmp(argv[1], "--resident-only") == 0;
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
    if (resident_only) break;
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
  // Resident spans (see the top): cycles a span from pipe_rows' start to its end, the SMs' mean.
  int clock_khz = 0;
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0);
  unsigned long long* cycles;
  cudaMalloc(&cycles, sms * sizeof(unsigned long long));
  std::printf("resident spans (every page in the ring when pipe_rows starts; us at the %d MHz the device reports):\n",
              clock_khz / 1000);
  const Shape resident[] = {{"QKV, 1B (2 groups x 2 parts, K 2048)", 2, 2, 2048},
                            {"o_proj, 1B (2 groups, K 2048)", 2, 1, 2048},
                            {"down, 1B (1 group, K 8192)", 1, 1, 8192},
                            {"QKV, Qwen2.5-1.5B (2 groups x 2 parts, K 1536)", 2, 2, 1536}};
  for (const Shape& shape : resident) {
    const uint32_t reps = 2000;
    const size_t smem = size_t(shape.ops_floats()) * 4 + kRingPages * kPageBytes;
    cudaFuncSetAttribute(resident_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    std::vector<double> per_span;
    for (int rep = 0; rep < 5; ++rep) {
      resident_kernel<<<sms, kBlockThreads, smem>>>(shape, reps, cycles, sink);
      std::vector<unsigned long long> c(sms);
      cudaMemcpy(c.data(), cycles, sms * sizeof(unsigned long long), cudaMemcpyDeviceToHost);
      double sum = 0;
      for (unsigned long long v : c) sum += double(v);
      if (rep >= 1) per_span.push_back(sum / sms / reps);
    }
    const cudaError_t err = cudaGetLastError();
    std::sort(per_span.begin(), per_span.end());
    const double cyc = per_span[per_span.size() / 2], us = cyc / (clock_khz / 1e3);
    std::printf("%-48s: %6.0f cycles a span (%.2f us), %5.0f a page (%.3f us) %s\n", shape.name, cyc, us,
                cyc / shape.pages(), us / shape.pages(), err == cudaSuccess ? "" : cudaGetErrorString(err));
  }
  return 0;
}
