// What does one dependent stage cost on its own? A decode step is ~80 stages in a chain (5 per
// layer), and each hands a row of activations from every SM to every SM. The megakernel does it
// with a dependency counter: the producing block stores its slice, fences, adds to the counter;
// the consuming block polls the counter, then loads the row. This microbenchmark times a chain of
// such stages with no weights at all (so the time per stage is the pure handoff), against:
//   none:    no synchronization (each block reads a row nobody waits for): the floor of the loop;
//   counter: the megakernel's protocol (store, __threadfence, relaxed atomic add; acquire polls);
//   flags:   every value carries its stage number in the same 8-byte word ({value, flag}, the
//            "LL" protocol of NCCL): the consumer polls the row itself, and the producer needs no
//            fence and no counter, because each word proves its own freshness.
// Each runs with the SMs otherwise idle, and with a producer warp per SM streaming 16 KB pages
// from HBM into shared memory (as the weight pipe does) with 2 to 12 pages in flight, because under
// that load an L2 round trip takes longer. The counter protocol's signal is timed both as the
// megakernel does it (__threadfence, then a relaxed add) and as one red.release.
//
// Build: nvcc -O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a bench/stage_handoff.cu -o stage_handoff
// Run:   ./stage_handoff      (one line per protocol, signal and stream depth: us per stage, stream GB/s)
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <vector>

#include "bulk_copy.cuh"

namespace {

constexpr int kThreads = 256;             // consumer threads, as the megakernel's
constexpr int kDim = 2048;                // the row every stage hands on (Llama-3.2-1B's hidden size)
constexpr uint32_t kPageBytes = 16384;
constexpr uint32_t kPages = 12;

enum Protocol : int { kNone = 0, kCounter = 1, kFlags = 2 };

__device__ __forceinline__ uint64_t globaltimer() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
__device__ __forceinline__ void sync_consumers() { asm volatile("bar.sync 1, %0;" ::"n"(kThreads) : "memory"); }

struct Params {
  int protocol, stages;
  uint32_t inflight;          // pages in flight per SM of the weight stream (the ring's depth here); 0: no stream
  int release;                // counter: one red.release instead of __threadfence + relaxed add
  float* rows;                // counter / none: [2][kDim] floats
  uint2* flagged;             // flags: [2][kDim] {value bits, flag}
  uint32_t* counter;
  uint32_t epoch;             // this launch's first flag (flags) or counter base (counter)
  const char* weights;        // stream: per block, a region of region_bytes
  size_t region_bytes;
  unsigned long long* streamed;  // bytes the producers moved
  unsigned long long* elapsed;   // ns, block 0: first stage to last
  float* sink;
};

// The producer warp: streams its block's region round and round until the consumers are done.
__device__ void stream_pages(const Params& p, char* ring, uint64_t* full, volatile int* stop) {
  const char* src = p.weights + size_t(blockIdx.x) * p.region_bytes;
  const uint32_t n = uint32_t(p.region_bytes / kPageBytes);
  uint32_t slot = 0, phase = 0, page = 0;
  unsigned long long moved = 0;
  // Prime the ring, then refill each page as it lands (the consumers take no time at all here:
  // the stream is as fast as the memory system lets one SM go).
  const uint32_t pages = p.inflight;
  for (uint32_t i = 0; i < pages; ++i) {
    if (threadIdx.x % 32 == 0) {
      mbar_expect_tx(&full[i], kPageBytes);
      bulk_copy(ring + i * kPageBytes, src + size_t(page) * kPageBytes, kPageBytes, &full[i]);
    }
    page = page + 1 == n ? 0 : page + 1;
  }
  while (!*stop) {
    while (!mbar_test(&full[slot], phase)) {
    }
    moved += kPageBytes;
    if (threadIdx.x % 32 == 0) {
      mbar_expect_tx(&full[slot], kPageBytes);
      bulk_copy(ring + slot * kPageBytes, src + size_t(page) * kPageBytes, kPageBytes, &full[slot]);
    }
    page = page + 1 == n ? 0 : page + 1;
    if (++slot == pages) slot = 0, phase ^= 1;
  }
  // Drain what is in flight before the block exits.
  for (uint32_t i = 0; i < pages; ++i) {
    while (!mbar_test(&full[slot], phase)) {
    }
    if (++slot == pages) slot = 0, phase ^= 1;
  }
  if (threadIdx.x % 32 == 0) atomicAdd(p.streamed, moved);
}

// Stage s: wait for stage s - 1's row, load it, reduce it (as a norm does), and write this block's
// slice of stage s's row. Blocks = kDim / slice.
__global__ void __launch_bounds__(kThreads + 32, 1) handoff(const Params p) {
  extern __shared__ __align__(1024) char smem[];
  __shared__ uint64_t full[kPages];
  __shared__ float partial[kThreads / 32];
  __shared__ volatile int stop;
  const int slice = kDim / gridDim.x;
  if (threadIdx.x == 0) {
    stop = 0;
    for (uint32_t i = 0; i < kPages; ++i) mbar_init(&full[i], 1);
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();
  if (threadIdx.x >= kThreads) {
    if (p.inflight) stream_pages(p, smem, full, &stop);
    return;
  }
  const uint64_t t0 = globaltimer();
  float carry = 0;
  for (int s = 1; s <= p.stages; ++s) {
    const int in = (s - 1) % 2, out = s % 2;
    float v = 0;
    if (p.protocol == kFlags) {
      // Each thread polls its own 8 values (2048 / 256) until every flag says stage s - 1.
      const uint32_t want = p.epoch + s - 1;
      const uint2* src = p.flagged + in * kDim + threadIdx.x * 8;
      for (int i = 0; i < 8; i += 2) {
        uint4 w;
        do {
          asm volatile("ld.volatile.global.v4.u32 {%0,%1,%2,%3}, [%4];"
                       : "=r"(w.x), "=r"(w.y), "=r"(w.z), "=r"(w.w)
                       : "l"(src + i));
        } while (s > 1 && (w.y != want || w.w != want));
        v += __uint_as_float(w.x) + __uint_as_float(w.z);
      }
    } else {
      if (p.protocol == kCounter && s > 1 && threadIdx.x == 0) {
        const uint32_t target = p.epoch + (s - 1) * gridDim.x;
        volatile uint32_t* c = p.counter;
        while (true) {
          uint32_t value;
          asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(value) : "l"(c) : "memory");
          if (value >= target) break;
          __nanosleep(32);
        }
      }
      sync_consumers();
      const float4* src = reinterpret_cast<const float4*>(p.rows + in * kDim) + threadIdx.x * 2;
      const float4 a = __ldcg(src), b = __ldcg(src + 1);
      v = a.x + a.y + a.z + a.w + b.x + b.y + b.z + b.w;
    }
    // The row's sum, as a norm's sum of squares would be.
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
    if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
    sync_consumers();
    float sum = 0;
    for (int w = 0; w < kThreads / 32; ++w) sum += partial[w];
    carry += sum;
    if (threadIdx.x < slice) {
      const float y = sum * 1e-9f + float(s);
      const int i = blockIdx.x * slice + threadIdx.x;
      if (p.protocol == kFlags) {
        const uint2 word = make_uint2(__float_as_uint(y), p.epoch + s);
        asm volatile("st.volatile.global.v2.u32 [%0], {%1,%2};" ::"l"(p.flagged + out * kDim + i), "r"(word.x),
                     "r"(word.y)
                     : "memory");
      } else {
        __stcg(p.rows + out * kDim + i, y);
      }
    }
    sync_consumers();  // partial is reused, and the counter must follow every thread's store
    if (p.protocol == kCounter && threadIdx.x == 0) {
      if (p.release) {
        asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(p.counter) : "memory");
      } else {
        __threadfence();
        atomicAdd(p.counter, 1u);
      }
    }
  }
  if (threadIdx.x == 0) {
    if (blockIdx.x == 0) *p.elapsed = globaltimer() - t0;
    stop = 1;
  }
  if (carry == 1234.5f) *p.sink = carry;
}

#define CHECK(x)                                                                     \
  do {                                                                               \
    cudaError_t e = (x);                                                             \
    if (e != cudaSuccess) {                                                          \
      std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, cudaGetErrorString(e)); \
      std::exit(1);                                                                  \
    }                                                                                \
  } while (0)

}  // namespace

int main() {
  cudaDeviceProp prop{};
  CHECK(cudaGetDeviceProperties(&prop, 0));
  // A power of two that divides kDim, at most one block per SM (all resident: they wait on each other).
  int blocks = 1;
  while (blocks * 2 <= prop.multiProcessorCount && blocks * 2 <= kDim) blocks *= 2;
  const int stages = 2000;
  const size_t region = size_t(8) << 20;  // 8 MB per block: 1 GB in all, far past the L2
  Params p{};
  p.stages = stages;
  p.region_bytes = region;
  CHECK(cudaMalloc(&p.rows, 2 * kDim * sizeof(float)));
  CHECK(cudaMalloc(&p.flagged, 2 * kDim * sizeof(uint2)));
  CHECK(cudaMalloc(&p.counter, sizeof(uint32_t)));
  CHECK(cudaMalloc(&p.streamed, sizeof(unsigned long long)));
  CHECK(cudaMalloc(&p.elapsed, sizeof(unsigned long long)));
  CHECK(cudaMalloc(&p.sink, sizeof(float)));
  char* weights;
  CHECK(cudaMalloc(&weights, region * blocks));
  CHECK(cudaMemset(weights, 1, region * blocks));
  CHECK(cudaMemset(p.rows, 0, 2 * kDim * sizeof(float)));
  CHECK(cudaMemset(p.flagged, 0, 2 * kDim * sizeof(uint2)));
  CHECK(cudaMemset(p.counter, 0, sizeof(uint32_t)));
  p.weights = weights;
  const size_t smem = kPages * kPageBytes;
  CHECK(cudaFuncSetAttribute(handoff, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  std::printf("device %s, %d SMs, %d blocks, %d stages of a %d-float row\n", prop.name, prop.multiProcessorCount,
              blocks, stages, kDim);
  std::printf("%-8s %-8s %-7s %10s %12s\n", "protocol", "signal", "stream", "us/stage", "stream GB/s");
  const char* names[] = {"none", "counter", "flags"};
  uint32_t counter_base = 0, flag_base = 1;
  struct Run {
    int protocol, release;
    uint32_t inflight;  // 0: no stream
  };
  std::vector<Run> runs;
  for (uint32_t f : {0u, 2u, 4u, 6u, 8u, 12u}) {
    runs.push_back({kNone, 0, f});
    runs.push_back({kCounter, 0, f});
    if (f == 0 || f == 4 || f == 12) runs.push_back({kCounter, 1, f});
    if (f == 0 || f == 12) runs.push_back({kFlags, 0, f});
  }
  for (int round = 0; round < 2; ++round)
    for (const Run& r : runs) {
      p.protocol = r.protocol;
      p.release = r.release;
      p.inflight = r.inflight;
      // The counter only grows, and flags never repeat, across launches: no reset between them.
      p.epoch = r.protocol == kCounter ? counter_base : flag_base;
      CHECK(cudaMemset(p.streamed, 0, sizeof(unsigned long long)));
      handoff<<<blocks, kThreads + 32, smem>>>(p);
      CHECK(cudaGetLastError());
      CHECK(cudaDeviceSynchronize());
      if (r.protocol == kCounter) counter_base += uint32_t(stages) * blocks;
      if (r.protocol == kFlags) flag_base += stages + 1;
      unsigned long long ns = 0, bytes = 0;
      CHECK(cudaMemcpy(&ns, p.elapsed, sizeof ns, cudaMemcpyDeviceToHost));
      CHECK(cudaMemcpy(&bytes, p.streamed, sizeof bytes, cudaMemcpyDeviceToHost));
      if (round == 0) continue;  // warm-up
      char stream[16];
      std::snprintf(stream, sizeof stream, "%u pages", r.inflight);
      std::printf("%-8s %-8s %-7s %10.3f %12.1f\n", names[r.protocol],
                  r.protocol != kCounter ? "-" : r.release ? "release" : "fence", r.inflight ? stream : "no",
                  ns * 1e-3 / stages, r.inflight ? double(bytes) / double(ns) : 0.0);
    }
  return 0;
}
