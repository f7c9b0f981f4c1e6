// CpuExecutor: runs a Program on the CPU exactly as the megakernel does, worker threads standing in
// for SMs and honouring the dependency counters; or, seeded, any ready instruction in random order.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "schedule/program.h"

namespace mk {

struct CpuExecOptions {
  uint32_t threads = 0;                    // 0: the machine's hardware threads
  std::optional<uint64_t> random_order;    // seed: run ready instructions in random order, ignoring queues
  double hang_timeout_s = 30;              // no progress for this long is reported as a hang
  bool kv_bf16 = false;                    // round K and V to bf16 as they are stored, as the GPU does
};

class CpuExecutor {
 public:
  // `weights` is the table the program's weight ids index; `kv` the KV cache sized by the dims.
  CpuExecutor(const Program& program, std::vector<const float*> weights, float* kv, CpuExecOptions options);
  ~CpuExecutor();

  // One run of the program for the M tokens at position `pos` (tokens already in io()).
  void run(uint32_t pos);
  // Launch `launch` of a step of several (Program::launches, tensor parallelism between launches):
  // the SMs' instructions of that launch; launch 0 starts the step.
  void run_launch(uint32_t pos, uint32_t launch);

  // Per-instruction [start, end] steady-clock nanoseconds of the next runs, indexed like
  // program().instructions ([2 i], [2 i + 1]), as the GPU's %globaltimer trace.
  void enable_trace(bool on) { trace_.assign(on ? 2 * program_.instructions.size() : 0, 0); }
  const std::vector<uint64_t>& trace() const { return trace_; }

  // Tensor parallelism: `ranks` are every rank's executors, in rank order (this one among them),
  // each running its rank's Program, built alike. Instructions flagged kFlagWaitAllRanks then wait
  // on every rank's counters, and AllReduce / ArgmaxRanks read every rank's arena.
  void join_ranks(const std::vector<CpuExecutor*>& ranks);
  // Tensor parallelism between launches (Program::exchanges): the exchange `x` over the ranks'
  // arenas, once every rank has run the launch before it. Sums in rank order, as AllReduce does.
  static void exchange(const std::vector<CpuExecutor*>& ranks, const Exchange& x);

  float* arena() { return arena_.data(); }
  int32_t* io() { return io_.data(); }
  const Program& program() const { return program_; }
  uint64_t instructions_run() const { return instructions_run_; }

 private:
  // The instructions [first[s], last[s]) of every SM s (indices into program().instructions).
  void run_queues(uint32_t pos, const uint32_t* first, const uint32_t* last);
  void run_threaded(uint32_t pos, const uint32_t* first, const uint32_t* last);
  void run_random(uint32_t pos, const uint32_t* first, const uint32_t* last);
  // Whether every wait of `ins` holds; `by_data`: as the GPU, a wait by data (kFlagWaitByData) is
  // the input row carrying its tag rather than its writer's counter (random order only: one thread,
  // so the arena is read while nothing writes it).
  bool ready(const Instruction& ins, bool by_data = false) const;
  bool input_row_tagged(const Instruction& ins) const;
  void execute(const Instruction& ins, uint32_t pos);
  // `next`: the instruction each SM was at (an index into program().instructions; last[s]: done).
  [[noreturn]] void report_hang(const std::vector<uint32_t>& next, const uint32_t* last) const;

  const Program& program_;
  std::vector<const float*> weights_;
  float* kv_;
  CpuExecOptions options_;
  std::vector<float> arena_;
  std::vector<int32_t> io_;
  std::unique_ptr<std::atomic<uint32_t>[]> counters_;
  std::vector<float*> rank_arenas_;                        // tensor parallelism, else empty
  std::vector<const std::atomic<uint32_t>*> rank_counters_;
  uint32_t epoch_ = 0;
  std::vector<uint64_t> trace_;
  uint64_t instructions_run_ = 0;
};

}  // namespace mk
