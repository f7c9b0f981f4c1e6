// OpGraph bookkeeping: weight and buffer registration, arena layout, and dependency analysis from
// the buffers each node reads and writes (so a new op gets correct ordering without hand-written edges).
#include "graph/graph.h"

#include <algorithm>
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

  const size_t n = nodes.size();
  std::vector<int> last_writer(buffers.size(), -1);
  std::vector<std::vector<int>> readers(buffers.size());
  std::vector<std::vector<bool>> ancestors(n, std::vector<bool>(n, false));
  for (size_t i = 0; i < n; ++i) {
    OpNode& node = nodes[i];
    std::vector<int> deps;
    for (int b : node.reads)
      if (last_writer[b] >= 0) deps.push_back(last_writer[b]);
    for (int b : node.writes) {
      if (last_writer[b] >= 0) deps.push_back(last_writer[b]);
      for (int r : readers[b])
        if (r != static_cast<int>(i)) deps.push_back(r);
    }
    std::sort(deps.begin(), deps.end());
    deps.erase(std::unique(deps.begin(), deps.end()), deps.end());
    for (int d : deps) {
      ancestors[i][d] = true;
      for (size_t k = 0; k < n; ++k)
        if (ancestors[d][k]) ancestors[i][k] = true;
    }
    // Transitive reduction: a dependency implied through another one costs a wait for nothing.
    node.deps.clear();
    for (int d : deps) {
      bool implied = false;
      for (int e : deps)
        if (e != d && ancestors[e][d]) implied = true;
      if (!implied) node.deps.push_back(d);
    }
    for (int b : node.reads) readers[b].push_back(static_cast<int>(i));
    for (int b : node.writes) {
      last_writer[b] = static_cast<int>(i);
      readers[b].clear();
    }
  }
}

}  // namespace mk
