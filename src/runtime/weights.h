// Engine weights on the host: every WeightDecl of a graph assembled in float32 from a model
// file's tensors (concatenated, transposed, shape-checked), plus computed tables such as RoPE.
#pragma once

#include <functional>
#include <vector>

#include "graph/graph.h"
#include "model/tensor_source.h"

namespace mk {

using ProgressFn = std::function<void(size_t done, size_t total)>;

struct HostWeights {
  std::vector<std::vector<float>> data;  // indexed like the graph's weights
  std::vector<const float*> table() const;
  size_t bytes() const;
};

HostWeights load_weights(const ModelConfig& config, const std::vector<WeightDecl>& decls,
                         const TensorSource& source, const ProgressFn& progress = {});

// RoPE inverse frequencies (head_dim / 2 of them) with the config's scaling, as HF computes them.
std::vector<float> rope_inv_freq(const ModelConfig& config);
// [max_ctx, head_dim]: cos of each frequency in the first half of a row, sin in the second.
std::vector<float> rope_table(const ModelConfig& config, uint32_t max_ctx);

}  // namespace mk
