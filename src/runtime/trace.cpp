// Trace output: per-opcode summary, Chrome trace events (one thread per SM), SVG timeline.
#include "runtime/trace.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

namespace mk {
namespace {

std::pair<uint64_t, uint64_t> span(const Program& p, const std::vector<uint64_t>& t) {
  uint64_t t0 = UINT64_MAX, t1 = 0;
  for (size_t i = 0; i < p.instructions.size(); ++i) t0 = std::min(t0, t[2 * i]), t1 = std::max(t1, t[2 * i + 1]);
  return {t0, std::max(t0, t1)};
}

// A fixed colour per opcode so pictures of different runs read the same.
const char* colour(uint16_t op) {
  static const char* palette[] = {"#999999", "#8c564b", "#e377c2", "#1f77b4", "#ff7f0e",
                                  "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#9467bd"};
  return op < sizeof(palette) / sizeof(*palette) ? palette[op] : "#000000";
}

}  // namespace

TraceSummary summarize_trace(const Program& p, const std::vector<uint64_t>& t) {
  TraceSummary s;
  const auto [t0, t1] = span(p, t);
  s.wall_us = (t1 - t0) / 1e3;
  std::map<std::string, OpcodeTime> per;
  double busy = 0;
  for (uint32_t sm = 0; sm < p.num_sms; ++sm) {
    uint64_t prev_end = t0;
    for (uint32_t k = p.queue_begin[sm]; k < p.queue_begin[sm + 1]; ++k) {
      OpcodeTime& o = per[opcode_name(p.instructions[k].opcode)];
      const uint64_t start = t[2 * k], end = std::max(t[2 * k + 1], start);
      ++o.instructions;
      o.busy_us += (end - start) / 1e3;
      o.wait_us += (start > prev_end ? start - prev_end : 0) / 1e3;
      busy += (end - start) / 1e3;
      prev_end = end;
    }
  }
  s.busy_fraction = s.wall_us > 0 ? busy / (p.num_sms * s.wall_us) : 0;
  for (auto& [name, o] : per) {
    o.opcode = name;
    s.per_opcode.push_back(o);
  }
  std::sort(s.per_opcode.begin(), s.per_opcode.end(),
            [](const OpcodeTime& a, const OpcodeTime& b) { return a.busy_us > b.busy_us; });
  return s;
}

std::string format_trace_summary(const TraceSummary& s) {
  std::ostringstream os;
  char buf[256];
  std::snprintf(buf, sizeof buf, "one program run: %.1f us wall, SMs busy %.1f%% (the rest waiting on counters)\n",
                s.wall_us, 100 * s.busy_fraction);
  os << buf << "| opcode | instructions | SM-us busy | us per instruction | SM-us waiting before |\n"
     << "|---|---|---|---|---|\n";
  for (const OpcodeTime& o : s.per_opcode) {
    std::snprintf(buf, sizeof buf, "| %s | %zu | %.1f | %.2f | %.1f |\n", o.opcode.c_str(), o.instructions, o.busy_us,
                  o.busy_us / o.instructions, o.wait_us);
    os << buf;
  }
  return os.str();
}

std::vector<PhaseTime> summarize_phases(const Program& p, const std::vector<uint64_t>& t,
                                        const std::vector<uint64_t>& ph) {
  struct Samples {
    std::vector<double> input, row, row_whole, weights, finish, signal, total, stalls, stall_us, ready;
  };
  std::map<std::string, Samples> by_node;
  std::vector<std::string> order;
  auto us = [](uint64_t a, uint64_t b) { return b > a ? (b - a) / 1e3 : 0.0; };
  for (size_t i = 0; i < p.instructions.size() && kTracePhases * (i + 1) <= ph.size(); ++i) {
    const uint64_t start = t[2 * i], end = t[2 * i + 1], input = ph[kTracePhases * i + kPhaseInput],
                   weights = ph[kTracePhases * i + kPhaseWeights], signal = ph[kTracePhases * i + kPhaseSignal];
    if (signal == 0) continue;  // not stamped (a build without phases, or the instruction did not run)
    std::string node = p.counter_names[p.instructions[i].node];
    if (node.size() > 1 && node[0] == 'L' && node.find('.') != std::string::npos) node = node.substr(node.find('.') + 1);
    const auto [it, first] = by_node.try_emplace(node);
    if (first) order.push_back(node);
    Samples& s = it->second;
    if (input) s.input.push_back(us(start, input));
    if (const uint64_t row = ph[kTracePhases * i + kPhaseRowLanded]) s.row.push_back(us(start, row));
    if (const uint64_t whole = ph[kTracePhases * i + kPhaseRowWhole]) s.row_whole.push_back(us(start, whole));
    if (input && weights) {
      s.weights.push_back(us(input, weights));
      s.stalls.push_back(double(ph[kTracePhases * i + kPhasePageStalls]));
      s.stall_us.push_back(ph[kTracePhases * i + kPhasePageStallNs] / 1e3);
      s.ready.push_back(double(ph[kTracePhases * i + kPhaseRingReady]));
    }
    s.finish.push_back(us(weights ? weights : start, signal));
    s.signal.push_back(us(signal, end));
    s.total.push_back(us(start, end));
  }
  auto median = [](std::vector<double> v) {
    if (v.empty()) return std::nan("");
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  std::vector<PhaseTime> rows;
  for (const std::string& node : order) {
    const Samples& s = by_node[node];
    rows.push_back({node, s.total.size(), median(s.input), median(s.row), median(s.row_whole), median(s.weights),
                    median(s.finish),
                    median(s.signal), median(s.total), median(s.stalls), median(s.stall_us), median(s.ready)});
  }
  return rows;
}

std::string format_phase_summary(const std::vector<PhaseTime>& rows) {
  std::ostringstream os;
  char buf[256];
  os << "inside the instructions (medians, us; - where a kind has no such phase):\n"
     << "| node | instructions | input load | of which row landed | row whole | weights | finish | signal | total | "
        "pages waited for | page wait | pages ready |\n"
     << "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  auto cell = [](double v) {
    char b[32];
    if (std::isnan(v)) return std::string("-");
    std::snprintf(b, sizeof b, "%.2f", v);
    return std::string(b);
  };
  for (const PhaseTime& r : rows) {
    std::snprintf(buf, sizeof buf, "| %s | %zu | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.node.c_str(),
                  r.instructions, cell(r.input_us).c_str(), cell(r.row_us).c_str(), cell(r.row_whole_us).c_str(),
                  cell(r.weights_us).c_str(),
                  cell(r.finish_us).c_str(), cell(r.signal_us).c_str(), cell(r.total_us).c_str(),
                  cell(r.page_stalls).c_str(), cell(r.stall_us).c_str(), cell(r.ring_ready).c_str());
    os << buf;
  }
  return os.str();
}

std::string chrome_trace_json(const Program& p, const std::vector<uint64_t>& t) {
  using json = nlohmann::json;
  const uint64_t t0 = span(p, t).first;
  json events = json::array();
  for (uint32_t sm = 0; sm < p.num_sms; ++sm) {
    events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", 0}, {"tid", sm},
                      {"args", {{"name", "SM " + std::to_string(sm)}}}});
    for (uint32_t k = p.queue_begin[sm]; k < p.queue_begin[sm + 1]; ++k) {
      const Instruction& ins = p.instructions[k];
      const double start = (t[2 * k] - t0) / 1e3, end = (std::max(t[2 * k + 1], t[2 * k]) - t0) / 1e3;
      events.push_back({{"ph", "X"}, {"pid", 0}, {"tid", sm}, {"ts", start}, {"dur", end - start},
                        {"cat", opcode_name(ins.opcode)},
                        {"name", p.counter_names[ins.node] + " [" + std::to_string(ins.tile_begin) + "," +
                                     std::to_string(ins.tile_end) + ")"},
                        {"args", {{"bytes", ins.cost_bytes}, {"queue_index", k - p.queue_begin[sm]}}}});
    }
  }
  return json({{"traceEvents", events}, {"displayTimeUnit", "ns"}}).dump();
}

std::string trace_svg(const Program& p, const std::vector<uint64_t>& t) {
  const auto [t0, t1] = span(p, t);
  const double width = 1200, row = std::max(2.0, std::min(8.0, 800.0 / p.num_sms)), left = 50, top = 30;
  const double scale = (width - left - 10) / std::max<double>(1, t1 - t0);
  const double height = top + row * p.num_sms + 60;
  std::ostringstream os;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
                "font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
                "<text x=\"%.0f\" y=\"18\">one program run, %u SMs, %.1f us (rows: SMs; colours: opcodes)</text>\n",
                width, height, left, p.num_sms, (t1 - t0) / 1e3);
  os << buf;
  for (uint32_t sm = 0; sm < p.num_sms; ++sm)
    for (uint32_t k = p.queue_begin[sm]; k < p.queue_begin[sm + 1]; ++k) {
      const double x = left + (t[2 * k] - t0) * scale;
      const double w = std::max(0.5, (std::max(t[2 * k + 1], t[2 * k]) - t[2 * k]) * scale);
      std::snprintf(buf, sizeof buf, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n", x,
                    top + sm * row, w, row * 0.9, colour(p.instructions[k].opcode));
      os << buf;
    }
  double x = left;
  for (uint16_t op = 0; op < static_cast<uint16_t>(Opcode::Count); ++op) {
    std::snprintf(buf, sizeof buf,
                  "<rect x=\"%.0f\" y=\"%.0f\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%.0f\" y=\"%.0f\">%s</text>\n",
                  x, top + row * p.num_sms + 20, colour(op), x + 14, top + row * p.num_sms + 29, opcode_name(op));
    os << buf;
    x += 110;
  }
  os << "</svg>\n";
  return os.str();
}

}  // namespace mk
