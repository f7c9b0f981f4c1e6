// Dependencies from the buffers each node reads and writes (read-after-write, write-after-read,
// write-after-write), transitively reduced, so that a new op gets correct ordering without
// hand-written edges. By token block too (prefill): a node whose tiles each stay inside one block of
// 128 prompt tokens reads and writes only that block's rows, so its block b need wait only for its
// producers' block b (or, reading keys and values, blocks 0..b), not for every tile of them; the
// analysis then runs on (buffer, token block) regions and (node, block) parts.
#include <algorithm>
#include <cassert>
#include <cstdint>
#include <vector>

#include "graph/graph.h"

namespace mk {

uint32_t OpNode::block_of_unit(uint32_t u) const { return block_units ? u % block_period / block_units : 0; }

BlockDeps derive_block_deps(const OpGraph& g, const std::vector<uint32_t>& blocks) {
  assert(blocks.size() == g.nodes.size());
  const size_t n = g.nodes.size();
  // The regions of every buffer: as many as the most blocks of any node (all blocked nodes of a
  // graph split the same prompt; a whole node touches every region).
  uint32_t regions = 1;
  for (uint32_t b : blocks) regions = std::max(regions, b);
  // Parts: node i's blocks, or one part for a whole node; part_of[i] is node i's first.
  std::vector<uint32_t> part_of(n + 1, 0);
  for (size_t i = 0; i < n; ++i) part_of[i + 1] = part_of[i] + std::max<uint32_t>(1, blocks[i]);
  const uint32_t parts = part_of[n];
  auto node_of = [&](uint32_t part) {
    return uint32_t(std::upper_bound(part_of.begin(), part_of.end(), part) - part_of.begin() - 1);
  };
  const size_t words = (parts + 63) / 64;
  std::vector<uint64_t> ancestors(size_t(parts) * words, 0);  // bit q of row p: q precedes p
  auto is_ancestor = [&](uint32_t of, uint32_t q) { return ancestors[size_t(of) * words + q / 64] >> (q % 64) & 1; };

  std::vector<int64_t> last_writer(g.buffers.size() * regions, -1);
  std::vector<std::vector<uint32_t>> readers(g.buffers.size() * regions);
  BlockDeps out(n);
  for (size_t i = 0; i < n; ++i) {
    const OpNode& node = g.nodes[i];
    out[i].resize(std::max<uint32_t>(1, blocks[i]));
    for (uint32_t b = 0; b < out[i].size(); ++b) {
      const uint32_t self = part_of[i] + b;
      // The regions this part reads and writes: its block's (blocked; a causal read, blocks 0..b),
      // or all of them (whole).
      std::vector<size_t> reads, writes;
      auto add = [&](std::vector<size_t>& to, int buf, bool causal) {
        const uint32_t lo = blocks[i] ? (causal ? 0 : b) : 0, hi = blocks[i] ? b + 1 : regions;
        for (uint32_t k = lo; k < hi; ++k) to.push_back(size_t(buf) * regions + k);
      };
      for (int buf : node.reads)
        add(reads, buf, std::count(node.reads_causal.begin(), node.reads_causal.end(), buf) > 0);
      for (int buf : node.writes) add(writes, buf, false);
      std::vector<uint32_t> deps;
      for (size_t r : reads)
        if (last_writer[r] >= 0) deps.push_back(uint32_t(last_writer[r]));
      for (size_t r : writes) {
        if (last_writer[r] >= 0) deps.push_back(uint32_t(last_writer[r]));
        for (uint32_t q : readers[r])
          if (q != self) deps.push_back(q);
      }
      std::sort(deps.begin(), deps.end());
      deps.erase(std::unique(deps.begin(), deps.end()), deps.end());
      uint64_t* mine = &ancestors[size_t(self) * words];
      for (uint32_t d : deps) {
        mine[d / 64] |= uint64_t(1) << (d % 64);
        const uint64_t* theirs = &ancestors[size_t(d) * words];
        for (size_t w = 0; w < words; ++w) mine[w] |= theirs[w];
      }
      // Transitive reduction: a wait implied through another one costs a wait for nothing.
      for (uint32_t d : deps) {
        bool implied = false;
        for (uint32_t e : deps)
          if (e != d && is_ancestor(e, d)) implied = true;
        if (implied) continue;
        const uint32_t dn = node_of(d);
        out[i][b].push_back({int(dn), blocks[dn] ? d - part_of[dn] : kAllBlocks});
      }
      for (size_t r : reads) readers[r].push_back(self);
      for (size_t r : writes) {
        last_writer[r] = self;
        readers[r].clear();
      }
    }
  }
  return out;
}

}  // namespace mk
