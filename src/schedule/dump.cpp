// Readable dumps of a Program: each SM's queue, and a summary of how work and bytes are spread
// (per layer, per SM, imbalance, the cost model's estimated step time).
#include <algorithm>
#include <cstdio>
#include <map>
#include <numeric>
#include <sstream>

#include "schedule/program.h"

namespace mk {
namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string human_bytes(double b) {
  if (b >= 1e9) return fmt("%.2f GB", b / 1e9);
  if (b >= 1e6) return fmt("%.2f MB", b / 1e6);
  if (b >= 1e3) return fmt("%.1f kB", b / 1e3);
  return fmt("%.0f B", b);
}

std::string layer_label(uint16_t layer) { return layer == 0xFFFF ? "-" : std::to_string(layer); }

// How each op of one layer spreads (layers repeat): its tiles, the SMs they are on, the most tiles
// one SM runs and the largest tile's bytes. A stage lasts as long as its busiest SM, so this shows
// where a stage leaves SMs idle (fewer tiles than SMs) or runs in waves.
std::string one_layer_ops(const Program& p) {
  // Layer 1 where there is one: layer 0 differs a little (its inputs come from the embedding).
  auto has = [&](uint16_t l) {
    return std::any_of(p.instructions.begin(), p.instructions.end(), [&](const Instruction& i) { return i.layer == l; });
  };
  const uint16_t layer = has(1) ? 1 : 0;
  if (!has(layer)) return "";
  struct Op {
    uint32_t tiles = 0, most = 0;
    double largest = 0;
    std::map<uint32_t, uint32_t> on_sm;  // SM -> tiles
  };
  std::map<uint32_t, Op> ops;  // by node: the graph's order
  for (uint32_t s = 0; s < p.num_sms; ++s)
    for (uint32_t k = 0; k < p.queue_size(s); ++k) {
      const Instruction& ins = p.queue(s)[k];
      if (ins.layer != layer || ins.opcode == static_cast<uint16_t>(Opcode::Barrier)) continue;
      Op& op = ops[ins.node];
      ++op.tiles;
      op.most = std::max(op.most, ++op.on_sm[s]);
      op.largest = std::max<double>(op.largest, ins.cost_bytes);
    }
  std::ostringstream os;
  os << "layer " << layer << "'s ops (tiles, SMs they are on, most tiles on one SM, the largest tile's bytes):\n";
  for (const auto& [node, op] : ops) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "  %-22s %5u tiles on %3zu SMs, at most %u on one, %s\n",
                  p.counter_names[node].c_str(), op.tiles, op.on_sm.size(), op.most, human_bytes(op.largest).c_str());
    os << buf;
  }
  return os.str();
}

}  // namespace

std::string summarize_program(const Program& p, const OpGraph& g) {
  std::ostringstream os;
  const ModelDims& d = p.dims;
  os << "model: " << g.config.arch_name << " (" << arch_name(g.config.arch) << "), hidden " << d.hidden
     << ", " << d.n_layers << " layers, " << d.n_heads << " heads / " << d.n_kv_heads << " kv heads x "
     << d.head_dim << ", intermediate " << d.intermediate << ", vocab " << d.vocab << "\n";
  os << "program: " << p.num_sms << " SMs, " << d.n_tokens << " token(s) per run, "
     << p.instructions.size() << " instructions, " << g.nodes.size() << " ops, " << p.num_counters
     << " counters, arena " << human_bytes(p.arena_floats * 4.0) << ", KV capacity " << d.max_ctx << "\n";
  if (p.launches > 1)
    os << "launches per step: " << p.launches << " (tensor-parallel ranks exchange their partials between them)\n";

  // Instructions per op kind and per layer.
  std::map<std::string, size_t> per_op;
  std::map<uint16_t, size_t> per_layer;
  for (const Instruction& ins : p.instructions) {
    ++per_op[opcode_name(ins.opcode)];
    ++per_layer[ins.layer];
  }
  os << "instructions per opcode:";
  for (auto& [name, count] : per_op) os << " " << name << "=" << count;
  os << "\ninstructions per layer:";
  size_t shown = 0;
  for (auto& [layer, count] : per_layer) {
    if (layer != 0xFFFF && shown++ >= 4) continue;  // layers repeat; show a few and the rest
    os << " " << (layer == 0xFFFF ? std::string("outside") : "L" + std::to_string(layer)) << "=" << count;
  }
  if (per_layer.size() > 5) os << " ...(every layer " << per_layer.begin()->second << ")";
  os << "\n";

  const auto [mn, mx] = std::minmax_element(p.sm_bytes.begin(), p.sm_bytes.end());
  const double total = std::accumulate(p.sm_bytes.begin(), p.sm_bytes.end(), 0.0);
  const double mean = total / p.num_sms;
  std::vector<uint32_t> counts(p.num_sms);
  for (uint32_t s = 0; s < p.num_sms; ++s) counts[s] = p.queue_size(s);
  const auto [cmn, cmx] = std::minmax_element(counts.begin(), counts.end());
  os << "instructions per SM: min " << *cmn << ", max " << *cmx << ", mean "
     << fmt("%.1f", double(p.instructions.size()) / p.num_sms) << "\n";
  os << "bytes read per step: " << human_bytes(total) << "; per SM min " << human_bytes(*mn) << ", max "
     << human_bytes(*mx) << ", mean " << human_bytes(mean) << "; imbalance (max/mean) "
     << fmt("%.3f", mean > 0 ? *mx / mean : 1.0) << "\n";
  os << one_layer_ops(p);
  const double busiest = *std::max_element(p.sm_busy_us.begin(), p.sm_busy_us.end());
  os << "cost model: est. step " << fmt("%.1f", p.est_makespan_us) << " us, busiest SM "
     << fmt("%.1f", busiest) << " us busy, SM utilisation "
     << fmt("%.1f%%", 100.0 * std::accumulate(p.sm_busy_us.begin(), p.sm_busy_us.end(), 0.0) /
                          (p.num_sms * std::max(p.est_makespan_us, 1e-9)))
     << "\n";
  return os.str();
}

std::string dump_program(const Program& p, const OpGraph& g, bool full) {
  std::ostringstream os;
  if (full) {
    for (uint32_t s = 0; s < p.num_sms; ++s) {
      os << "SM " << s << ": " << p.queue_size(s) << " instructions, " << human_bytes(p.sm_bytes[s]) << "\n";
      const Instruction* q = p.queue(s);
      for (uint32_t k = 0; k < p.queue_size(s); ++k) {
        const Instruction& ins = q[k];
        os << "  " << opcode_name(ins.opcode) << " L" << layer_label(ins.layer) << " "
           << p.counter_names[ins.node] << " tile " << ins.tile_index << " [" << ins.tile_begin << ","
           << ins.tile_end << ")";
        for (uint16_t w = 0; w < ins.n_waits; ++w)
          os << (w ? ", " : " wait ") << "c" << ins.waits[w].counter << ">=" << ins.waits[w].count;
        if (ins.flags & kFlagWaitByData) os << " (GPU: the last by data)";
        os << " -> c" << ins.signal << "  " << human_bytes(ins.cost_bytes) << "\n";
      }
    }
    os << "\n";
  }
  os << summarize_program(p, g);
  return os.str();
}

}  // namespace mk
