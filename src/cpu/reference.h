// The plain reference forward: straight loops over positions, layers and heads, no program, no
// tiles, no counters. Both executors are checked against it (and it against HF transformers).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "graph/graph.h"
#include "runtime/weights.h"

namespace mk {

// Logits [tokens.size(), vocab] for the whole sequence starting at position 0.
std::vector<float> reference_logits(const OpGraph& graph, const HostWeights& weights,
                                    std::span<const int32_t> tokens);

}  // namespace mk
