// How fast can one block per SM stream weights into a shared-memory ring? A microbenchmark of the
// weight pipe's shape (ops/weight_pipe.cuh) against a plain grid-stride read, to find which ring
// shape reaches the card's bandwidth: page size, copy size, ring depth, what the consumers do.
//
// Build: nvcc -O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a bench/pipe_stream.cu -o pipe_stream
// Run:   ./pipe_stream            (prints one line per configuration, GB/s and % of the plain read,
//                                   then the first configuration's rate on 16 to all SMs)
#include <cuda_runtime.h>

#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "bulk_copy.cuh"

namespace {

// The watchdog style of ops/weight_pipe.cuh before try_wait: test_wait in a loop with a clock read.
__device__ __forceinline__ void mbar_spin(uint64_t* bar, uint32_t parity) {
  while (!mbar_done_now(bar, parity)) {
    uint64_t now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    if (now == 1) break;
  }
}
__global__ void plain_read(const uint4* __restrict__ src, size_t n, uint32_t* sink) {
  uint32_t acc = 0;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const uint4 v = __ldcs(src + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x12345678u) *sink = acc;
}

struct Config {
  uint32_t pages, page_bytes, copy_bytes;
  uint32_t row_bytes;  // 0: a page is one contiguous piece; else 8 rows of this length, page = a column chunk of them
  uint32_t consume;    // 0: consumers only release pages; 1: a dot product of each row with fp32 x
  uint32_t warps;      // consumer warps
  uint32_t spin = 0;   // 1: waits spin on test_wait (mbar_spin) instead of try_wait
  uint32_t offset = 0; // bytes the region starts past a 2 MB boundary
  uint32_t streams = 1;  // 2: pairs of pages alternate between two halves of the region (gate/up)
  uint32_t ring_offset = 0;  // bytes the ring starts past a 1 KB boundary of shared memory
};

constexpr uint32_t kMaxPages = 16;

// One block per SM: warp `warps` produces, warps [0, warps) consume. SM s streams bytes_per_sm from
// its own region.
__global__ void pipe_kernel(const char* __restrict__ src, size_t bytes_per_sm, Config c, float* sink) {
  extern __shared__ __align__(1024) char ring_base[];
  char* ring = ring_base + c.ring_offset;
  __shared__ uint64_t full[kMaxPages], empty[kMaxPages];
  __shared__ float x[2048];
  const uint32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (threadIdx.x == 0) {
    for (uint32_t i = 0; i < c.pages; ++i) {
      mbar_init(&full[i], 1);
      mbar_init(&empty[i], c.warps);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  for (uint32_t i = threadIdx.x; i < 2048; i += blockDim.x) x[i] = 1.0f / (i + 1);
  __syncthreads();
  const char* base = src + blockIdx.x * (bytes_per_sm + (2u << 20)) + c.offset;
  const uint32_t n_pages = uint32_t(bytes_per_sm / c.page_bytes);
  const uint32_t copies = c.page_bytes / c.copy_bytes;
  if (warp == c.warps) {
    for (uint32_t k = 0; k < n_pages; ++k) {
      const uint32_t slot = k % c.pages, parity = (k / c.pages) & 1;
      if (c.spin) mbar_spin(&empty[slot], parity ^ 1); else mbar_wait(&empty[slot], parity ^ 1);
      char* dst = ring + size_t(slot) * c.page_bytes;
      if (lane == 0) mbar_expect_tx(&full[slot], c.page_bytes);
      __syncwarp();
      for (uint32_t j = lane; j < copies; j += 32) {
        const char* s;
        if (c.row_bytes == 0) {
          // Two streams: pages 4i, 4i+1 from the first half, 4i+2, 4i+3 from the second.
          const size_t half = bytes_per_sm / 2;
          const size_t at = c.streams == 2 ? (k % 4 < 2 ? 0 : half) + size_t(k / 4 * 2 + k % 2) * c.page_bytes
                                           : size_t(k) * c.page_bytes;
          s = base + at + size_t(j) * c.copy_bytes;
        } else {
          // Pages walk column chunks of 8-row groups: page k is chunk k % chunks of group k / chunks.
          const uint32_t chunk_bytes = c.page_bytes / 8, chunks = c.row_bytes / chunk_bytes;
          const uint32_t g = k / chunks, ch = k % chunks;
          const uint32_t per_row = chunk_bytes / c.copy_bytes, r = j / per_row, piece = j % per_row;
          s = base + size_t(g) * 8 * c.row_bytes + size_t(r) * c.row_bytes + ch * chunk_bytes + piece * c.copy_bytes;
        }
        bulk_copy(dst + size_t(j) * c.copy_bytes, s, c.copy_bytes, &full[slot]);
      }
    }
    return;
  }
  float acc = 0.0f;
  const uint32_t row_bytes_in_page = c.page_bytes / c.warps;
  for (uint32_t k = 0; k < n_pages; ++k) {
    const uint32_t slot = k % c.pages, parity = (k / c.pages) & 1;
    if (c.spin) mbar_spin(&full[slot], parity); else mbar_wait(&full[slot], parity);
    if (c.consume) {
      const __nv_bfloat16* w = reinterpret_cast<const __nv_bfloat16*>(ring + size_t(slot) * c.page_bytes + warp * row_bytes_in_page);
      const uint32_t cols = row_bytes_in_page / 2;
#pragma unroll 4
      for (uint32_t e = lane * 4; e < cols; e += 128) {
        const uint2 raw = *reinterpret_cast<const uint2*>(w + e);
        const float4 xv = *reinterpret_cast<const float4*>(x + (e % 2048));
        acc += __uint_as_float(raw.x << 16) * xv.x + __uint_as_float(raw.x & 0xFFFF0000u) * xv.y +
               __uint_as_float(raw.y << 16) * xv.z + __uint_as_float(raw.y & 0xFFFF0000u) * xv.w;
      }
    }
    __syncwarp();
    if (lane == 0) mbar_arrive(&empty[slot]);
  }
  if (acc == 1234.5f) *sink = acc;
}

}  // namespace

int main() {
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  const size_t per_sm = 4u << 20;  // 4 MB per SM, as the LM head of a 1B model
  const size_t bytes = per_sm * sms, alloc = (per_sm + (2u << 20)) * sms + 4096;
  char* buf;
  float* sink;
  cudaMalloc(&buf, alloc);
  cudaMalloc(&sink, 4);
  cudaMemset(buf, 0x3c, alloc);
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  auto time_ms = [&](auto launch) {
    std::vector<float> t;
    for (int rep = 0; rep < 8; ++rep) {
      cudaEventRecord(a);
      launch();
      cudaEventRecord(b);
      cudaEventSynchronize(b);
      float ms;
      cudaEventElapsedTime(&ms, a, b);
      if (rep >= 2) t.push_back(ms);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  };
  const float plain = time_ms([&] { plain_read<<<sms * 8, 512>>>((const uint4*)buf, bytes / 16, (uint32_t*)sink); });
  const double plain_gbps = bytes / (plain * 1e-3) / 1e9;
  std::printf("plain grid-stride read: %.0f GB/s (%zu MB)\n", plain_gbps, bytes >> 20);
  // Each line changes one thing from the first, the shape of the pipe today (H200, 2026-12-01: the
  // first at 100-102% of the plain read; row-major pages 72-78%; spin waits 97%; the ring 16 bytes
  // off a line 92%, 64 bytes off 91%).
  std::vector<Config> configs = {
      {12, 16384, 16384, 0, 1, 8},                   // contiguous pages, dot products, try_wait, aligned
      {12, 16384, 16384, 0, 0, 8},                   // consumers only release the pages
      {12, 16384, 2048, 4096, 1, 8},                 // row-major pages: 8 row segments of 2 KB
      {12, 16384, 16384, 0, 1, 8, 1},                // waits spin on test_wait
      {12, 16384, 16384, 0, 1, 8, 0, 256},           // the weights 256 bytes past a 2 MB boundary
      {12, 16384, 16384, 0, 1, 8, 0, 0, 2},          // two streams, as up and gate
      {12, 16384, 16384, 0, 1, 8, 0, 0, 1, 16},      // the ring 16 bytes off a 1 KB boundary
      {12, 16384, 16384, 0, 1, 8, 0, 0, 1, 64},      // 64 bytes off
      {8, 16384, 16384, 0, 1, 8},                    // 8 pages
      {6, 32768, 4096, 0, 1, 8},                     // 6 pages of 32 KB
  };
  for (const Config& c : configs) {
    const size_t smem = size_t(c.pages) * c.page_bytes + c.ring_offset;
    cudaFuncSetAttribute(pipe_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    const float ms = time_ms([&] { pipe_kernel<<<sms, 32 * (c.warps + 1), smem>>>(buf, per_sm, c, sink); });
    const cudaError_t err = cudaGetLastError();
    const double gbps = bytes / (ms * 1e-3) / 1e9;
    std::printf("pages %2u x %5u B, copies of %5u B, %s, %s, %s, offset %3u, %u stream(s), ring at +%u B: %6.0f GB/s (%.1f%% of plain) %s\n",
                c.pages, c.page_bytes, c.copy_bytes, c.row_bytes ? "row-major pages" : "contiguous pages",
                c.consume ? "dot products" : "release only", c.spin ? "spin waits" : "try_wait", c.offset, c.streams,
                c.ring_offset, gbps, 100 * gbps / plain_gbps,
                err == cudaSuccess ? "" : cudaGetErrorString(err));
  }
  // How the aggregate rate grows with the SMs that stream: a decode op whose tiles fill only some
  // of the SMs (Qwen2.5-1.5B's o_proj and down: 96 tiles of 16 rows on 132 SMs) is bound by this,
  // not by the card's bandwidth, unless fewer SMs already saturate it.
  const Config& first = configs.front();
  const size_t first_smem = size_t(first.pages) * first.page_bytes;
  cudaFuncSetAttribute(pipe_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(first_smem));
  for (int n : {16, 32, 48, 64, 80, 96, 112, 125, 128, sms}) {
    if (n > sms) continue;
    const float ms = time_ms([&] { pipe_kernel<<<n, 32 * (first.warps + 1), first_smem>>>(buf, per_sm, first, sink); });
    const double gbps = double(per_sm) * n / (ms * 1e-3) / 1e9;
    std::printf("first configuration on %3d SMs: %6.0f GB/s (%.1f%% of plain, %.1f GB/s an SM) %s\n", n, gbps,
                100 * gbps / plain_gbps, gbps / n, cudaGetLastError() == cudaSuccess ? "" : "(launch failed)");
  }
  return 0;
}
