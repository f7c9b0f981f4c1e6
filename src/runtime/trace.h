// Reading a per-instruction timeline of one program run (from Engine::trace_decode_step): a text
// summary by opcode, a Chrome trace (opens in Perfetto) and an SVG picture with one row per SM.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cuda/kernel_params.h"
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

// Where the time inside an instruction goes (GPU builds configured with -DMK_TRACE_PHASES=ON):
// `phases` [kTracePhases i + k] is when instruction i ended phase k (ns, cuda/kernel_params.h's
// TracePhase), 0 where it has no such phase. A decode matvec or QKV tile loads its input row
// (kPhaseInput), then takes its weight pages (kPhaseWeights); every instruction then finishes
// (RoPE and the KV append, say) and begins to signal (kPhaseSignal: the fence and the counter).
// Two more slots are counts, not times: the pages warp 0 found not yet landed (kPhasePageStalls)
// and the ns it waited on them (kPhasePageStallNs); and when thread 0's part of a decode input row
// landed (kPhaseRowLanded); when every thread's part had landed (kPhaseRowWhole: past the first
// barrier after the row's copy, with a fused norm the sum of squares' block reduction), which splits
// the rest of the input phase into the row's slowest part and the norm; and how many of its weight
// pages were in the ring when the consumers came for them (kPhaseRingReady).
using cuda::kPhaseInput;
using cuda::kPhasePageStallNs;
using cuda::kPhasePageStalls;
using cuda::kPhaseRingReady;
using cuda::kPhaseRowLanded;
using cuda::kPhaseRowWhole;
using cuda::kPhaseSignal;
using cuda::kPhaseWeights;
using cuda::kTracePhases;

// Medians over the instructions of one kind of node (the graph node's name less its layer, e.g.
// "o_proj"), in µs. NaN where no instruction of the kind has the phase.
struct PhaseTime {
  std::string node;
  size_t instructions = 0;
  double input_us = 0;    // start (dependencies met) to the input row loaded
  double row_us = 0;      // start to thread 0's part of the input row landed in shared memory
  double row_whole_us = 0;  // start to every thread's part landed (with a norm: and summed)
  double weights_us = 0;  // input loaded to the last weight page done
  double finish_us = 0;   // weights done (else start) to the signal begun
  double signal_us = 0;   // signal begun to end
  double total_us = 0;
  double page_stalls = 0;  // pages not yet landed when warp 0 first looked (NaN: no weight pages)
  double stall_us = 0;     // warp 0's time waiting on them
  double ring_ready = 0;   // of its pages, those in the ring when the weights phase began
};
std::vector<PhaseTime> summarize_phases(const Program& program, const std::vector<uint64_t>& stamps,
                                        const std::vector<uint64_t>& phases);
std::string format_phase_summary(const std::vector<PhaseTime>& rows);
std::string chrome_trace_json(const Program& program, const std::vector<uint64_t>& stamps);
std::string trace_svg(const Program& program, const std::vector<uint64_t>& stamps);

}  // namespace mk
