// Program: the scheduler's output, what both executors run: one instruction queue per SM, the
// number of dependency counters, the arena layout and the weights the instructions refer to.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "mk/isa.h"

namespace mk {

struct Program {
  uint32_t num_sms = 0;
  std::vector<Instruction> instructions;  // queue of SM s: [queue_begin[s], queue_begin[s+1])
  std::vector<uint32_t> queue_begin;
  uint32_t num_counters = 0;
  std::vector<std::string> counter_names;  // for dumps and hang reports
  // The node whose tiles signal each counter (counter i < nodes: node i, or its token block 0; past
  // them, the other token blocks' counters), or -1 for a Barrier join.
  std::vector<int32_t> counter_node;

  ModelDims dims{};
  std::vector<WeightDecl> weights;  // the weight table the instructions index
  uint64_t arena_floats = 0;
  uint32_t io_slots = 0, tokens_in = 0, tokens_out = 0;
  uint32_t logits = 0, logits_rows = 0;
  uint32_t logits_cols = 0;        // the vocabulary, or (tensor parallelism) this rank's slice of it

  // A step of several launches (OpGraph::launches, tensor parallelism between launches): launch k
  // runs SM s's instructions [launch_begin[k * num_sms + s], launch_begin[(k + 1) * num_sms + s]),
  // each queue's launches in order; exchanges[k] comes between launch k and k + 1. One launch: empty.
  uint32_t launches = 1;
  std::vector<uint32_t> launch_begin;
  std::vector<Exchange> exchanges;

  // The cost model's view, for dumps and for judging balance.
  std::vector<double> sm_bytes;    // bytes each SM reads
  std::vector<double> sm_busy_us;  // estimated busy time of each SM
  double est_makespan_us = 0;      // estimated end of the last instruction

  uint32_t queue_size(uint32_t sm) const { return queue_begin[sm + 1] - queue_begin[sm]; }
  const Instruction* queue(uint32_t sm) const { return instructions.data() + queue_begin[sm]; }
};

struct ScheduleOptions {
  uint32_t num_sms = 132;
  uint32_t max_waits = kMaxWaits;   // fewer forces Barrier joins (tests)
  double bandwidth_gbps = 3000;     // whole-chip read bandwidth assumed by the cost model
  double instr_overhead_us = 0.3;   // fixed cost of one instruction (fetch, dispatch, signal)
  double handoff_us = 0.6;          // latency from a producer's signal to a consumer's start
  // Prefill: tiles wait for their producers' token blocks rather than for whole ops, where both
  // have that structure (OpNode::block_units, derive_block_deps): a block's next op may start while
  // the other blocks still run. Off: every tile waits for every tile of its producers.
  bool token_block_deps = true;
  // Prefill: a short last wave of an op's tiles takes them in pieces (OpNode::tail_units).
  bool split_tail = true;
};

Program schedule(const OpGraph& graph, const ScheduleOptions& options);

// Whether fenced instructions are the exception in `p`: some of its instructions hand their outputs
// on without a fence (kFlagNoFence: one-rank decode with the tagged handoff). Only then does the
// GPU's weight pipe hold its look-ahead while a fenced one runs (KernelParams::hold_fenced); where
// every instruction fences (tensor parallelism, prefill, the handoff off) that would stop it.
inline bool fences_are_rare(const Program& p) {
  for (const Instruction& ins : p.instructions)
    if (ins.flags & kFlagNoFence) return true;
  return false;
}

// Human-readable dump: every queue with its instructions (`full`), then the summary.
std::string dump_program(const Program& program, const OpGraph& graph, bool full);
std::string summarize_program(const Program& program, const OpGraph& graph);

}  // namespace mk
