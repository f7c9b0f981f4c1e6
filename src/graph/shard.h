// Tensor parallelism, the graph side (graph/shard.cpp): the weights a rank loads.
#pragma once

#include "graph/graph.h"

namespace mk {

// Replaces the graph's full weight declarations by rank s.rank's slices: Q/K/V rows of its heads,
// o_proj and down columns, gate/up rows, LM-head rows (a sliced copy of a tied embedding); the
// row-parallel biases on rank 0 only; norms and embeddings whole. No-op for one rank.
void shard_weights(OpGraph& graph, const TpSplit& split);

}  // namespace mk
