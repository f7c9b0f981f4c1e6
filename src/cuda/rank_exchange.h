// Tensor parallelism between launches (`--tp-comm launches`): the exchange of a partial sum or of
// the ranks' bests between two launches of a step (graph.h, Exchange), by one small kernel that
// reads and writes every rank's arena (the same GPU's memory, or another's by peer access).
#pragma once

#include <cuda_runtime.h>

#include "graph/graph.h"

namespace mk::cuda {

// On `stream`: Sum: each element of [x.offset, x.offset + x.floats) becomes the sum over the ranks
// in rank order (as AllReduce adds them in the kernel), in every rank's arena; Gather: rank r's
// slice r becomes every rank's. `arenas`: a device array of the ranks' arena pointers.
void launch_rank_exchange(float* const* arenas, uint32_t ranks, const Exchange& x, cudaStream_t stream);

}  // namespace mk::cuda
