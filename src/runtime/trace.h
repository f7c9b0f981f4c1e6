// Reading a per-instruction timeline of one program run (from Engine::trace_decode_step): a text
// summary by opcode, a Chrome trace (opens in Perfetto) and an SVG picture with one row per SM.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "schedule/program.h"

namespace mk {

struct OpcodeTime {
  std::string opcode;
  size_t instructions = 0;
  double busy_us = 0;  // summed over SMs
  double wait_us = 0;  // SM time between the previous instruction's end and this one's start
};

struct TraceSummary {
  double wall_us = 0;         // first start to last end
  double busy_fraction = 0;   // SM busy time / (SMs x wall)
  std::vector<OpcodeTime> per_opcode;  // sorted by busy time, largest first
};

// `stamps`: [2 i] start and [2 i + 1] end (ns) of program.instructions[i].
TraceSummary summarize_trace(const Program& program, const std::vector<uint64_t>& stamps);
std::string format_trace_summary(const TraceSummary& summary);
std::string chrome_trace_json(const Program& program, const std::vector<uint64_t>& stamps);
std::string trace_svg(const Program& program, const std::vector<uint64_t>& stamps);

}  // namespace mk
