// L2 cache policies for the copies and loads that say how long their lines should stay: made by
// createpolicy (sm_80+) and passed to an instruction's .L2::cache_hint. Like mbarrier.cuh it depends
// on nothing else of the engine.
#pragma once

#include <cstdint>

namespace mk::cuda {

// An L2 policy that marks the lines a copy brings in as the first to evict: for weights that a
// decode step reads exactly once (gigabytes through a 50 MB L2), so that they do not push out the
// KV cache and the activations, which the next step reads again.
__device__ __forceinline__ uint64_t l2_evict_first_policy() {
  uint64_t policy = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
#endif
  return policy;
}

}  // namespace mk::cuda
