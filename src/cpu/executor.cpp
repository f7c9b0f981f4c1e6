// CpuExecutor: the CPU interpreter of a Program. Counters are monotonic (targets scale with the
// epoch) and use release/acquire like the GPU's, so the CPU checks the same synchronization design.
#include "cpu/executor.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <random>
#include <sstream>
#include <thread>

#include "cpu/ops/context.h"
#include "model/error.h"

namespace mk {

CpuExecutor::CpuExecutor(const Program& program, std::vector<const float*> weights, float* kv,
                         CpuExecOptions options)
    : program_(program), weights_(std::move(weights)), kv_(kv), options_(options),
      arena_(program.arena_floats, 0.0f), io_(program.io_slots, 0),
      counters_(new std::atomic<uint32_t>[program.num_counters]) {
  for (uint32_t i = 0; i < program.num_counters; ++i) counters_[i].store(0, std::memory_order_relaxed);
}

CpuExecutor::~CpuExecutor() = default;

void CpuExecutor::join_ranks(const std::vector<CpuExecutor*>& ranks) {
  rank_arenas_.clear();
  rank_counters_.clear();
  for (CpuExecutor* r : ranks) {
    if (r->program_.arena_floats != program_.arena_floats || r->program_.num_counters != program_.num_counters)
      throw Error("internal: tensor-parallel ranks' programs differ in shape");
    rank_arenas_.push_back(r->arena_.data());
    rank_counters_.push_back(r->counters_.get());
  }
}

void CpuExecutor::exchange(const std::vector<CpuExecutor*>& ranks, const Exchange& x) {
  const size_t n = ranks.size();
  for (CpuExecutor* r : ranks)
    if (uint64_t(x.offset) + x.floats > r->arena_.size()) throw Error("internal: an exchange past the arena");
  if (x.kind == Exchange::Kind::Sum) {
    for (uint32_t i = x.offset; i < x.offset + x.floats; ++i) {
      float sum = 0.0f;
      for (CpuExecutor* r : ranks) sum += r->arena_[i];
      for (CpuExecutor* r : ranks) r->arena_[i] = sum;
    }
    return;
  }
  const uint32_t slice = x.floats / uint32_t(n);
  for (size_t src = 0; src < n; ++src)
    for (size_t dst = 0; dst < n; ++dst)
      if (dst != src) {
        const float* from = ranks[src]->arena_.data() + x.offset + src * slice;
        std::copy(from, from + slice, ranks[dst]->arena_.data() + x.offset + src * slice);
      }
}

bool CpuExecutor::ready(const Instruction& ins, bool by_data) const {
  const bool row_by_data = by_data && (ins.flags & kFlagWaitByData);
  for (uint16_t w = 0; w < ins.n_waits - (row_by_data ? 1 : 0); ++w) {
    const uint32_t target = ins.waits[w].count * epoch_;
    if (counters_[ins.waits[w].counter].load(std::memory_order_acquire) < target) return false;
    // Every rank runs its program once per step, so its epoch is ours.
    if (ins.flags & kFlagWaitAllRanks)
      for (const std::atomic<uint32_t>* c : rank_counters_)
        if (c[ins.waits[w].counter].load(std::memory_order_acquire) < target) return false;
  }
  return !row_by_data || input_row_tagged(ins);
}

bool CpuExecutor::input_row_tagged(const Instruction& ins) const {
  const WholeRow row = whole_input_row(ins, program_.dims.hidden);
  const uint32_t tag = flag_tag(ins.flags, kTagInShift);
  for (uint64_t i = 0; i < row.floats; ++i)
    if ((std::bit_cast<uint32_t>(arena_[row.offset + i]) & 3u) != tag) return false;
  return true;
}

void CpuExecutor::execute(const Instruction& ins, uint32_t pos) {
  const cpu::OpContext ctx{&program_.dims, weights_.data(), arena_.data(), io_.data(), kv_, {epoch_, pos},
                           options_.kv_bf16, rank_arenas_.empty() ? nullptr : rank_arenas_.data(),
                           rank_arenas_.empty() ? 1u : uint32_t(rank_arenas_.size())};
  auto now = [] {
    return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now().time_since_epoch()).count());
  };
  const size_t index = &ins - program_.instructions.data();
  if (!trace_.empty()) trace_[2 * index] = now();
  cpu::run_instruction(ins, ctx);
  if (!trace_.empty()) trace_[2 * index + 1] = now();
  counters_[ins.signal].fetch_add(1, std::memory_order_release);
}

void CpuExecutor::run(uint32_t pos) {
  if (program_.launches > 1) throw Error("internal: a program of several launches runs launch by launch");
  ++epoch_;
  run_queues(pos, program_.queue_begin.data(), program_.queue_begin.data() + 1);
}

void CpuExecutor::run_launch(uint32_t pos, uint32_t launch) {
  if (launch >= program_.launches) throw Error("internal: no launch " + std::to_string(launch) + " in the program");
  if (program_.launches == 1) return run(pos);
  if (launch == 0) ++epoch_;  // the step's counters keep counting across its launches
  const uint32_t* first = program_.launch_begin.data() + size_t(launch) * program_.num_sms;
  run_queues(pos, first, first + program_.num_sms);
}

void CpuExecutor::run_queues(uint32_t pos, const uint32_t* first, const uint32_t* last) {
  if (options_.random_order)
    run_random(pos, first, last);
  else
    run_threaded(pos, first, last);
  for (uint32_t s = 0; s < program_.num_sms; ++s) instructions_run_ += last[s] - first[s];
}

void CpuExecutor::run_threaded(uint32_t pos, const uint32_t* first, const uint32_t* last) {
  const uint32_t sms = program_.num_sms;
  uint32_t threads = options_.threads ? options_.threads : std::max(1u, std::thread::hardware_concurrency());
  threads = std::min(threads, sms);
  std::vector<uint32_t> next(first, first + sms);  // each SM's next instruction; SM s belongs to thread s % threads
  std::atomic<uint64_t> progress{0};
  std::atomic<bool> hung{false};
  auto worker = [&](uint32_t t) {
    auto last_change = std::chrono::steady_clock::now();
    uint64_t seen = progress.load();
    for (;;) {
      bool done = true, ran = false;
      for (uint32_t s = t; s < sms; s += threads) {
        // Run as far as this SM's queue can go, exactly like one persistent GPU block.
        while (next[s] < last[s] && ready(program_.instructions[next[s]])) {
          execute(program_.instructions[next[s]], pos);
          ++next[s];
          ran = true;
          progress.fetch_add(1, std::memory_order_relaxed);
        }
        if (next[s] < last[s]) done = false;
      }
      if (done || hung.load(std::memory_order_relaxed)) return;
      if (ran) continue;
      std::this_thread::yield();
      const uint64_t now_seen = progress.load(std::memory_order_relaxed);
      const auto now = std::chrono::steady_clock::now();
      if (now_seen != seen) {
        seen = now_seen;
        last_change = now;
      } else if (std::chrono::duration<double>(now - last_change).count() > options_.hang_timeout_s) {
        hung.store(true);
        return;
      }
    }
  };
  if (threads == 1) {
    worker(0);
  } else {
    std::vector<std::thread> pool;
    for (uint32_t t = 0; t < threads; ++t) pool.emplace_back(worker, t);
    for (auto& th : pool) th.join();
  }
  if (hung.load()) report_hang(next, last);
}

void CpuExecutor::run_random(uint32_t pos, const uint32_t* first, const uint32_t* last) {
  std::mt19937_64 rng(*options_.random_order + epoch_ + first[0]);
  std::vector<const Instruction*> pending;
  for (uint32_t s = 0; s < program_.num_sms; ++s)
    for (uint32_t i = first[s]; i < last[s]; ++i) pending.push_back(&program_.instructions[i]);
  std::vector<size_t> runnable;
  auto stalled_since = std::chrono::steady_clock::now();
  while (!pending.empty()) {
    runnable.clear();
    for (size_t i = 0; i < pending.size(); ++i)
      if (ready(*pending[i], true)) runnable.push_back(i);
    if (runnable.empty()) {
      // Alone, nothing ready is a hang at once; with tensor-parallel peers, they may still be
      // coming: wait for them up to the hang timeout.
      const double stalled = std::chrono::duration<double>(std::chrono::steady_clock::now() - stalled_since).count();
      if (!rank_counters_.empty() && stalled < options_.hang_timeout_s) {
        std::this_thread::yield();
        continue;
      }
      report_hang(std::vector<uint32_t>(first, first + program_.num_sms), last);
    }
    stalled_since = std::chrono::steady_clock::now();
    const size_t pick = runnable[std::uniform_int_distribution<size_t>(0, runnable.size() - 1)(rng)];
    execute(*pending[pick], pos);
    pending[pick] = pending.back();
    pending.pop_back();
  }
}

void CpuExecutor::report_hang(const std::vector<uint32_t>& next, const uint32_t* last) const {
  std::ostringstream os;
  os << "program hang at epoch " << epoch_ << ":";
  for (uint32_t s = 0; s < program_.num_sms; ++s) {
    if (next[s] >= last[s]) continue;
    const Instruction& ins = program_.instructions[next[s]];
    os << " [SM " << s << " at " << next[s] - program_.queue_begin[s] << " " << program_.counter_names[ins.node];
    for (uint16_t w = 0; w < ins.n_waits; ++w)
      os << " c" << ins.waits[w].counter << "=" << counters_[ins.waits[w].counter].load() << "/"
         << ins.waits[w].count * epoch_;
    os << "]";
  }
  throw Error(os.str());
}

}  // namespace mk
