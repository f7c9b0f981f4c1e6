// The PTX of shared-memory mbarriers and of cp.async.bulk (sm_90+), which the weight pipe
// (ops/weight_pipe.cuh) builds on. It depends on nothing else of the engine, so that the
// microbenchmarks (bench/pipe_stream.cu, bench/stage_handoff.cu) build from the same instructions
// with nvcc alone. Below sm_90 the waits test without sleeping, and the bulk copies and their
// byte counts compile to nothing: the pipe then copies with cp.async.
#pragma once

#include <cstdint>

namespace mk::cuda {

// The shared-memory address of a generic pointer into shared memory, as PTX's .shared operands take it.
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void mbar_init(uint64_t* bar, uint32_t count) {
  asm volatile("mbarrier.init.shared.b64 [%0], %1;" ::"r"(smem_addr(bar)), "r"(count) : "memory");
}

__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("{ .reg .b64 state; mbarrier.arrive.shared.b64 state, [%0]; }" ::"r"(smem_addr(bar)) : "memory");
}

// Whether the phase of `bar` with this parity has completed, without waiting at all (test_wait).
__device__ __forceinline__ bool mbar_done_now(uint64_t* bar, uint32_t parity) {
  uint32_t done;
  asm volatile(
      "{ .reg .pred p; mbarrier.test_wait.parity.shared.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
      : "=r"(done)
      : "r"(smem_addr(bar)), "r"(parity)
      : "memory");
  return done != 0;
}

// The same, but on sm_90 by try_wait: the thread sleeps in the barrier until the phase completes (or
// a hardware time limit passes) instead of spinning, so waiting warps leave the issue slots to the
// warps that work. (So a false answer comes late, and a true one may have waited: the trace counts
// pages not yet landed with mbar_done_now.)
__device__ __forceinline__ bool mbar_test(uint64_t* bar, uint32_t parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  uint32_t done;
  asm volatile(
      "{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
      : "=r"(done)
      : "r"(smem_addr(bar)), "r"(parity)
      : "memory");
  return done != 0;
#else
  return mbar_done_now(bar, parity);
#endif
}

__device__ __forceinline__ void mbar_expect_tx(uint64_t* bar, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(bar)), "r"(bytes) : "memory");
#endif
}

__device__ __forceinline__ void bulk_copy(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
                   smem_addr(dst)),
               "l"(src), "r"(bytes), "r"(smem_addr(bar))
               : "memory");
#endif
}

// bulk_copy with an L2 policy (l2_policy.cuh).
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, uint32_t bytes, uint64_t* bar,
                                          uint64_t policy) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;" ::"r"(
          smem_addr(dst)),
      "l"(src), "r"(bytes), "r"(smem_addr(bar)), "l"(policy)
      : "memory");
#endif
}

// After mbar_init: the barriers' initial state is seen by the async proxy (TMA's complete_tx),
// not only by this thread. Then a barrier among the threads that use them.
__device__ __forceinline__ void mbar_init_fence() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
#endif
}

// Orders this thread's earlier accesses to global memory through the generic proxy (its acquire of
// what other SMs stored) before its later async-proxy ones (TMA loads of that data).
__device__ __forceinline__ void fence_proxy_async_global() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.proxy.async.global;" ::: "memory");
#endif
}

// A box of a 2-D tensor (TMA, sm_90+): the box at columns x, rows y of the tensor that `map` (a
// CUtensorMap in global, constant or parameter memory) describes, to dst, laid out (and swizzled)
// as the map says; bytes past the tensor's edges arrive as zeros. Completes on `bar` (complete_tx:
// the box's full size, zeros included).
__device__ __forceinline__ void tma_load_2d(void* dst, const void* map, int32_t x, int32_t y, uint64_t* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];" ::"r"(
          smem_addr(dst)),
      "l"(map), "r"(x), "r"(y), "r"(smem_addr(bar))
      : "memory");
#endif
}

// Arrives on `bar` once this thread's earlier cp.asyncs have landed (counted in the init count).
__device__ __forceinline__ void cp_async_arrive(uint64_t* bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared.b64 [%0];" ::"r"(smem_addr(bar)) : "memory");
}

}  // namespace mk::cuda
