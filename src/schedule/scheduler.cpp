// The scheduler: cuts every op into tiles and assigns them to SMs by list scheduling (earliest
// estimated finish, costs in bytes read), then wires each tile's waits to its producers' counters.
#include <algorithm>
#include <cassert>
#include <cmath>
#include <numeric>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/error.h"
#include "schedule/program.h"

namespace mk {
namespace {

struct Tiling {
  uint32_t tiles, size;
};

Tiling choose_tiling(const OpNode& n, uint32_t num_sms) {
  if (n.tile_units) return {(n.units + n.tile_units - 1) / n.tile_units, n.tile_units};
  const uint32_t align = std::max<uint32_t>(1, n.unit_align);
  const uint32_t aligned_units = (n.units + align - 1) / align;
  uint32_t tiles = std::min({aligned_units, n.max_tiles, num_sms});
  tiles = std::max<uint32_t>(tiles, 1);
  uint32_t size = (aligned_units + tiles - 1) / tiles * align;
  tiles = (n.units + size - 1) / size;
  return {tiles, size};
}

// The order in which an op's tiles are placed (and so run: each SM's queue keeps it). Tiles of a
// token-blocked op go out by their units within a block first: the tiles of every token block that
// read the same weight rows are placed together and run in the same wave, so each wave reads a
// quarter of the weights (at 4 blocks) rather than all of them. Measured on a 512-token prefill
// (gate/up: 512 tiles in 4 waves of 132 SMs, H200): 2% faster; memory was not the limit there (DRAM
// throughput 8%, L2 hit rate 91% either way), which this order keeps for larger weights. Placing
// them block by block instead, so that the next op's first blocks could start while an op's last
// ones ran, lost 2.8-3.4% at 512 tokens on Qwen2.5-1.5B, Llama-3.2-1B and 3B (H100, session 34).
std::vector<uint32_t> placement_order(const OpNode& n, const Tiling& t) {
  std::vector<uint32_t> order(t.tiles);
  std::iota(order.begin(), order.end(), 0u);
  if (n.token_blocks > 1) {
    const uint32_t per_block = n.units / n.token_blocks;
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      const uint32_t ua = a * t.size, ub = b * t.size;
      return std::pair(ua % per_block, ua / per_block) < std::pair(ub % per_block, ub / per_block);
    });
  }
  return order;
}

// A tile as the scheduler hands it out: units [begin, end) of its node; `index` numbers it among
// the node's tiles (the LM head's per-tile partials are indexed by it).
struct TileRange {
  uint32_t begin, end, index;
};

// The node's tiles in placement order. Where its tiles make more than one wave and the last one is
// short (OpNode::tail_units), each of that wave's tiles splits into pieces, as many as the SMs that
// wave leaves idle allow: the wave takes a piece's time rather than a whole tile's. Pieces stay
// inside their tile, so inside its token block, and every piece but a tile's last is a multiple of
// unit_align long.
std::vector<TileRange> tile_ranges(const OpNode& n, const Tiling& t, uint32_t num_sms, bool split_tail) {
  std::vector<TileRange> out;
  const std::vector<uint32_t> order = placement_order(n, t);
  const uint32_t rem = t.tiles % num_sms;
  const uint32_t align = std::max<uint32_t>(1, n.unit_align);
  uint32_t pieces = 1;
  if (split_tail && n.tail_units && t.tiles > num_sms && rem > 0)
    pieces = std::min(num_sms / rem, t.size / std::max(n.tail_units, align));
  uint32_t next_index = t.tiles;
  for (size_t j = 0; j < order.size(); ++j) {
    const uint32_t k = order[j], begin = k * t.size, end = std::min(n.units, begin + t.size);
    if (pieces < 2 || j < order.size() - rem) {
      out.push_back({begin, end, k});
      continue;
    }
    const uint32_t piece = ((end - begin + pieces - 1) / pieces + align - 1) / align * align;
    for (uint32_t b = begin; b < end; b += piece) out.push_back({b, std::min(end, b + piece), next_index++});
  }
  return out;
}

class ListScheduler {
 public:
  ListScheduler(const ScheduleOptions& o) : o_(o), queues_(o.num_sms), free_at_(o.num_sms, 0.0),
                                           bytes_(o.num_sms, 0.0), busy_(o.num_sms, 0.0) {}

  // Places one instruction that may start at `ready`; returns its estimated finish time.
  double place(Instruction ins, double ready, double bytes) {
    const double cost = o_.instr_overhead_us + bytes / (o_.bandwidth_gbps * 1e3 / o_.num_sms);
    uint32_t best = 0;
    double best_start = 0;
    for (uint32_t s = 0; s < o_.num_sms; ++s) {
      const double start = std::max(free_at_[s], ready);
      if (s == 0 || start < best_start || (start == best_start && bytes_[s] < bytes_[best])) {
        best = s;
        best_start = start;
      }
    }
    ins.cost_bytes = static_cast<uint32_t>(std::min(bytes, 4e9));
    queues_[best].push_back(ins);
    free_at_[best] = best_start + cost;
    bytes_[best] += bytes;
    busy_[best] += cost;
    return free_at_[best];
  }

  void finish(Program& p) {
    p.queue_begin.assign(1, 0);
    for (auto& q : queues_) {
      p.instructions.insert(p.instructions.end(), q.begin(), q.end());
      p.queue_begin.push_back(static_cast<uint32_t>(p.instructions.size()));
    }
    p.sm_bytes = bytes_;
    p.sm_busy_us = busy_;
    p.est_makespan_us = *std::max_element(free_at_.begin(), free_at_.end());
  }

 private:
  const ScheduleOptions& o_;
  std::vector<std::vector<Instruction>> queues_;
  std::vector<double> free_at_, bytes_, busy_;
};

// How many token blocks node n waits and signals by (OpNode::block_units): its blocks where every
// tile lies inside one, else 0 (the node as a whole).
// Every block must hold tiles: a block without any would be one the node's units do not describe.
uint32_t tile_blocks(const OpNode& n, const Tiling& t) {
  if (n.block_units == 0) return 0;
  const uint32_t blocks = (n.block_period - 1) / n.block_units + 1;
  if (blocks < 2) return 0;
  std::vector<bool> seen(blocks, false);
  for (uint32_t k = 0; k < t.tiles; ++k) {
    const uint32_t begin = k * t.size, end = std::min(n.units, begin + t.size);
    for (uint32_t u = begin + 1; u < end; ++u)
      if (n.block_of_unit(u) != n.block_of_unit(begin)) return 0;
    seen[n.block_of_unit(begin)] = true;
  }
  return std::count(seen.begin(), seen.end(), false) == 0 ? blocks : 0;
}

// The dependencies of node i with waits by data (OpNode::wait_by_data): its own but the writer of
// its input row, then that writer's, then the writer itself last (the one wait the GPU skips,
// kFlagWaitByData); none where it has none. Whole nodes only (decode).
std::optional<std::vector<BlockDep>> waits_by_data(const OpGraph& g, const BlockDeps& deps,
                                                   const std::vector<uint32_t>& blocks, size_t i) {
  const int w = g.nodes[i].wait_by_data;
  if (w < 0 || blocks[i] || blocks[w]) return std::nullopt;
  if (std::none_of(deps[i][0].begin(), deps[i][0].end(), [&](const BlockDep& d) { return d.node == w; }))
    return std::nullopt;  // not a dependency of its own after all: nothing to skip
  auto same = [](const BlockDep& a, const BlockDep& b) { return a.node == b.node && a.block == b.block; };
  std::vector<BlockDep> out;
  auto add = [&](const BlockDep& d) {
    if (d.node != w && std::none_of(out.begin(), out.end(), [&](const BlockDep& e) { return same(d, e); }))
      out.push_back(d);
  };
  for (const BlockDep& d : deps[i][0]) add(d);
  for (const BlockDep& d : deps[w][0]) add(d);
  out.push_back({w, kAllBlocks});
  return out;
}

// Each SM's queue cut into the step's launches (Program::launch_begin). Nodes are placed in graph
// order, so a queue's instructions already come launch by launch (checked).
void split_launches(const OpGraph& g, Program& p) {
  p.launches = g.launches;
  p.exchanges = g.exchanges;
  p.launch_begin.assign(size_t(g.launches + 1) * p.num_sms, 0);
  for (uint32_t s = 0; s < p.num_sms; ++s) {
    uint32_t k = 0;  // the launch whose first instruction on this SM is next to be found
    for (uint32_t i = p.queue_begin[s]; i < p.queue_begin[s + 1]; ++i) {
      const uint32_t launch = g.nodes[p.instructions[i].node].launch;
      if (launch + 1 < k) throw Error("internal: an SM's queue goes back to an earlier launch");
      for (; k <= launch; ++k) p.launch_begin[size_t(k) * p.num_sms + s] = i;
    }
    for (; k <= g.launches; ++k) p.launch_begin[size_t(k) * p.num_sms + s] = p.queue_begin[s + 1];
  }
}

}  // namespace

Program schedule(const OpGraph& g, const ScheduleOptions& o) {
  if (o.num_sms == 0) throw Error("schedule: the SM count must be at least 1");
  if (o.max_waits == 0 || o.max_waits > kMaxWaits) throw Error("schedule: max_waits must be 1..3");
  Program p;
  p.num_sms = o.num_sms;
  p.dims = g.dims;
  p.weights = g.weights;
  p.arena_floats = g.arena_floats;
  p.io_slots = g.io_slots;
  p.tokens_in = g.tokens_in;
  p.tokens_out = g.tokens_out;
  p.logits = g.logits;
  p.logits_rows = g.logits_rows;
  p.logits_cols = g.logits_cols;

  const size_t n_nodes = g.nodes.size();
  std::vector<Tiling> tilings;
  std::vector<uint32_t> blocks(n_nodes, 0);  // token blocks node i waits and signals by (0: whole)
  for (size_t i = 0; i < n_nodes; ++i) {
    tilings.push_back(choose_tiling(g.nodes[i], o.num_sms));
    if (o.token_block_deps) blocks[i] = tile_blocks(g.nodes[i], tilings[i]);
  }
  const BlockDeps deps = derive_block_deps(g, blocks);
  std::vector<std::vector<TileRange>> ranges(n_nodes);
  for (size_t i = 0; i < n_nodes; ++i) ranges[i] = tile_ranges(g.nodes[i], tilings[i], o.num_sms, o.split_tail);
  auto part_of = [&](size_t i, const TileRange& r) { return blocks[i] ? g.nodes[i].block_of_unit(r.begin) : 0u; };

  // Counters: node i's (its block 0's) is i, its other blocks' follow the nodes', Barrier joins'
  // come last. Each part's tiles and their estimated finish.
  std::vector<std::vector<uint32_t>> counter(n_nodes), tiles(n_nodes);
  std::vector<std::vector<double>> finish(n_nodes);
  for (size_t i = 0; i < n_nodes; ++i) {
    p.counter_names.push_back(g.nodes[i].name);
    p.counter_node.push_back(int32_t(i));
    counter[i].push_back(uint32_t(i));
    tiles[i].assign(std::max<uint32_t>(1, blocks[i]), 0);
    finish[i].assign(tiles[i].size(), 0.0);
    for (const TileRange& r : ranges[i]) ++tiles[i][part_of(i, r)];
  }
  for (size_t i = 0; i < n_nodes; ++i)
    for (uint32_t b = 1; b < blocks[i]; ++b) {
      counter[i].push_back(uint32_t(p.counter_names.size()));
      p.counter_names.push_back(g.nodes[i].name + ".block" + std::to_string(b));
      p.counter_node.push_back(int32_t(i));
    }
  ListScheduler ls(o);

  for (size_t i = 0; i < n_nodes; ++i) {
    const OpNode& n = g.nodes[i];
    // Waits by data where the node has them and they fit one instruction (no Barrier join: the
    // wait the GPU skips must be the instruction's own).
    std::optional<std::vector<BlockDep>> data_deps = waits_by_data(g, deps, blocks, i);
    if (data_deps && data_deps->size() > o.max_waits) data_deps.reset();
    const bool by_data = data_deps.has_value();
    // The waits of each part of the node: (counter, count, time it is satisfied) per producer part.
    struct Pending { Wait w; double at; };
    std::vector<std::vector<Pending>> part_waits(deps[i].size());
    for (size_t b = 0; b < deps[i].size(); ++b) {
      std::vector<Pending>& waits = part_waits[b];
      for (const BlockDep& d : by_data ? *data_deps : deps[i][b])
        for (uint32_t x = 0; x < tiles[d.node].size(); ++x)
          if (d.block == kAllBlocks || d.block == x)
            waits.push_back({{counter[d.node][x], tiles[d.node][x]}, finish[d.node][x]});
      // Join surplus dependencies with Barrier instructions until they fit one instruction. A
      // barrier always uses every slot of the format, so each one removes at least one wait.
      while (waits.size() > o.max_waits) {
        Instruction j{};
        j.opcode = static_cast<uint16_t>(Opcode::Barrier);
        j.layer = n.proto.layer;
        j.node = static_cast<uint32_t>(i);
        const size_t joined = std::min<size_t>(kMaxWaits, waits.size());
        double ready = 0;
        for (size_t k = 0; k < joined; ++k) {
          j.waits[k] = waits[k].w;
          ready = std::max(ready, waits[k].at);
        }
        j.n_waits = static_cast<uint16_t>(joined);
        j.signal = static_cast<uint32_t>(p.counter_names.size());
        p.counter_names.push_back(n.name + ".join");
        p.counter_node.push_back(-1);
        const double done = ls.place(j, ready + o.handoff_us, 0);
        waits.erase(waits.begin(), waits.begin() + joined);
        waits.push_back({{j.signal, 1}, done});
      }
    }

    for (const TileRange& r : ranges[i]) {
      const uint32_t b = part_of(i, r);
      const std::vector<Pending>& waits = part_waits[b];
      double ready = 0;
      for (const Pending& w : waits) ready = std::max(ready, w.at + o.handoff_us);
      Instruction ins = n.proto;
      if (by_data) ins.flags |= kFlagWaitByData;
      ins.n_waits = static_cast<uint16_t>(waits.size());
      for (size_t w = 0; w < waits.size(); ++w) ins.waits[w] = waits[w].w;
      ins.signal = counter[i][b];
      ins.tile_begin = r.begin;
      ins.tile_end = r.end;
      ins.tile_index = r.index;
      if (ins.opcode == static_cast<uint16_t>(Opcode::Argmax)) {
        assert(n.deps.size() == 1 && "argmax reduces the partials of exactly one LM head");
        // One partial per whole tile: an LM head's tiles never split into pieces (no tail_units).
        assert(ranges[n.deps[0]].size() == tilings[n.deps[0]].tiles && "the LM head's tiles are whole");
        ins.a.argmax.num_partials = tilings[n.deps[0]].tiles;
      }
      const double bytes = n.fixed_bytes + n.bytes_per_unit * (ins.tile_end - ins.tile_begin);
      finish[i][b] = std::max(finish[i][b], ls.place(ins, ready, bytes));
    }
  }
  p.num_counters = static_cast<uint32_t>(p.counter_names.size());
  ls.finish(p);
  if (g.launches > 1) split_launches(g, p);
  return p;
}

}  // namespace mk
