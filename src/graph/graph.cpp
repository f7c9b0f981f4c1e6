// OpGraph bookkeeping: weight and buffer registration, arena layout, and each node's dependencies
// (derived from the buffers it reads and writes: graph/dependencies.cpp).
#include "graph/graph.h"

#include <cassert>

namespace mk {

int64_t WeightDecl::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int OpGraph::add_weight(WeightDecl decl) {
  assert(weight_id(decl.name) < 0 && "weight declared twice");
  weights.push_back(std::move(decl));
  return static_cast<int>(weights.size()) - 1;
}

int OpGraph::weight_id(const std::string& name) const {
  for (size_t i = 0; i < weights.size(); ++i)
    if (weights[i].name == name) return static_cast<int>(i);
  return -1;
}

int OpGraph::add_buffer(std::string name, uint64_t floats) {
  buffers.push_back({std::move(name), floats, 0});
  return static_cast<int>(buffers.size()) - 1;
}

int OpGraph::add_node(OpNode node) {
  node.proto.node = static_cast<uint32_t>(nodes.size());
  node.launch = launches - 1;
  nodes.push_back(std::move(node));
  return static_cast<int>(nodes.size()) - 1;
}

void OpGraph::finalize() {
  // Arena: each buffer starts on a 256-byte boundary so vector loads on the GPU stay aligned.
  uint64_t offset = 0;
  for (Buffer& b : buffers) {
    if (b.floats == 0) continue;
    b.offset = static_cast<uint32_t>(offset);
    offset += (b.floats + 63) / 64 * 64;
  }
  arena_floats = offset;

  // The dependencies of whole nodes: derive_block_deps with no node split into token blocks.
  const BlockDeps deps = derive_block_deps(*this, std::vector<uint32_t>(nodes.size(), 0));
  for (size_t i = 0; i < nodes.size(); ++i) {
    nodes[i].deps.clear();
    for (const BlockDep& d : deps[i][0]) nodes[i].deps.push_back(d.node);
  }
}

}  // namespace mk
