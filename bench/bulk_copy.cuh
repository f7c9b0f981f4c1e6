// The microbenchmarks' (bench/pipe_stream.cu, bench/stage_handoff.cu) view of the megakernel's
// mbarrier and cp.async.bulk PTX: the very functions of src/cuda/mbarrier.cuh, which depends on
// nothing else of the engine, plus a wait without the engine's watchdog. Built for sm_90 or later.
#pragma once

#include "../src/cuda/mbarrier.cuh"

using mk::cuda::bulk_copy;
using mk::cuda::mbar_arrive;
using mk::cuda::mbar_done_now;
using mk::cuda::mbar_expect_tx;
using mk::cuda::mbar_init;
using mk::cuda::mbar_test;
using mk::cuda::smem_addr;

// Until the phase with this parity has completed (try_wait: may sleep in the barrier between tries).
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
  while (!mbar_test(bar, parity)) {
  }
}
