// The CUDA backend as the rest of the engine sees it (plain C++, no CUDA headers): the device, the
// model's weights and KV cache on it, and programs that run as one megakernel launch per step.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cuda/paged_weights.h"
#include "runtime/weights.h"
#include "schedule/program.h"

namespace mk::cuda {

struct DeviceInfo {
  bool present = false;
  int ordinal = 0;            // the CUDA device number
  std::string name;
  int sms = 0;
  size_t smem_per_block = 0;  // the opt-in maximum of dynamic shared memory
  int major = 0, minor = 0;
  double peak_bandwidth_gbps = 0;  // the memory's from its clock and bus width (0: not reported)
  size_t free_bytes = 0, total_bytes = 0;
  std::string why_absent;     // when !present
};

// Never throws: no driver, no device or a broken runtime all mean present = false.
DeviceInfo query_device(int ordinal = 0);
// The number of CUDA devices (0 when there is no usable driver or device). Never throws.
int device_count();
// Whether kernels on GPU `from` can read and write GPU `to`'s memory once peer access is enabled
// (true for a GPU and itself). Never throws.
bool peer_access(int from, int to);

// Read bandwidth of device memory (GB/s), by a streaming-read kernel over `bytes` (median of 10).
double measure_read_bandwidth_gbps(size_t bytes = size_t(4) << 30);

// How decode steps read weights. Auto: the weight pipe (a producer warp streams weights into a
// shared-memory ring ahead of the consumers, docs/PERFORMANCE.md) with cp.async.bulk on sm_90+ and
// 16-byte cp.async before; Bulk / CpAsync force one copy kind; Off: plain loads from each warp.
enum class WeightPipe : uint8_t { Auto, Bulk, CpAsync, Off };

// Which decode build of the megakernel runs (cuda/spec.h). Generic: dimensions read at run time,
// any model. Specialized: a build with a model's dimensions fixed at compile time (Llama-3.2-1B),
// for programs that match it; an error for others. Auto: the specialized build where the model
// matches one, else generic. With the weights streamed evict-first, the specialized build measured
// 1.4-2.7% faster at every context on the H100 (docs/PERFORMANCE.md, session 40).
enum class KernelBuild : uint8_t { Auto, Generic, Specialized };

// The name of the specialized decode build whose fixed dimensions these are (cuda/spec.h), or
// nullptr when only the generic build runs them. Answers without a GPU too.
const char* specialized_build(const ModelDims& dims);

// The build a decode program of `dims` runs when `asked` for: Auto resolved (never Auto).
inline KernelBuild decode_build(KernelBuild asked, const ModelDims& dims) {
  if (asked != KernelBuild::Auto) return asked;
  return specialized_build(dims) ? KernelBuild::Specialized : KernelBuild::Generic;
}

// `--pipe-inflight auto`: the cap on the weight pipe's copies in flight per SM (0: none) for decode
// programs of `dims` on a card whose memory peaks at `peak_gbps` (DeviceInfo), copying with
// cp.async.bulk (`bulk`). 3 where the memory is an H100's (2.5-4 TB/s) and every page of the
// model's matvecs is a whole 16 KB one; else none. Interleaved A/B, H100 (session 49), 3 against
// none: Llama-3.2-1B 2.7-3.4% faster at context 32 and 1.3-3.1% at 1024 (both builds),
// Llama-3.2-3B 2.6-2.8% / 1.2%; Qwen2.5-1.5B (hidden 1536: pages of 16 and 8 KB) 1.5-1.6% slower
// at 32 (in session 46 a cap of 8 pages lost it as much as 3, so not only for its fewer bytes).
// On the H200 (4.8 TB/s, session 48) 3 was 6.0-9.0% slower than none on Llama-3.2-1B, and 6 as
// slow. Other memory, and cp.async, not measured: none.
inline uint32_t auto_pipe_inflight(double peak_gbps, bool bulk, const ModelDims& dims) {
  const bool whole_pages = dims.hidden % kPageCols == 0 && dims.intermediate % kPageCols == 0 &&
                           dims.n_heads * dims.head_dim % kPageCols == 0;
  return bulk && peak_gbps >= 2500 && peak_gbps < 4000 && whole_pages ? 3 : 0;
}

// Weights (bf16) and the KV cache (bf16) on GPU `ordinal`. Throws mk::Error with the sizes on OOM.
// Its programs allocate, copy and launch on that GPU whatever device the calling thread has set.
class DeviceModel {
 public:
  DeviceModel(const std::vector<WeightDecl>& decls, const HostWeights& weights, const ModelDims& dims,
              int ordinal = 0);
  WeightPipe weight_pipe = WeightPipe::Auto;
  uint32_t max_pipe_pages = 0;  // a cap on the weight pipe's ring (0: as many pages as fit)
  // A cap on the pipe's copies in flight per SM (0: none); unset: auto (auto_pipe_inflight).
  std::optional<uint32_t> pipe_inflight;
  KernelBuild kernel_build = KernelBuild::Auto;
  ~DeviceModel();
  DeviceModel(const DeviceModel&) = delete;
  DeviceModel& operator=(const DeviceModel&) = delete;
  const DeviceInfo& device() const { return info_; }
  size_t weight_bytes() const { return weight_bytes_; }
  size_t kv_bytes() const { return kv_bytes_; }

 private:
  friend class DeviceProgram;
  DeviceInfo info_;
  void* weights_ = nullptr;        // one allocation for every tensor
  void* table_ = nullptr;          // device array of tensor pointers
  void* kv_ = nullptr;
  size_t weight_bytes_ = 0, kv_bytes_ = 0;
};

// One Program on the GPU: queues, counters, arena and io. Each run() is one kernel launch.
class DeviceProgram {
 public:
  DeviceProgram(DeviceModel& model, const Program& program);
  ~DeviceProgram();
  DeviceProgram(const DeviceProgram&) = delete;
  DeviceProgram& operator=(const DeviceProgram&) = delete;

  void set_tokens(const int32_t* ids, uint32_t n);  // into the program's input slots
  // Launches one step at `pos` (asynchronous). With `feedback`, the step's argmax also becomes the
  // next step's input token and is appended to the device history at `history_index`.
  void run(uint32_t pos, bool feedback = false, uint32_t history_index = 0);
  // Launch `launch` of the step at `pos` (asynchronous; launch 0 starts the step), feedback as
  // for run(). A program of one launch: run(). Several (Program::launches, tensor parallelism
  // between launches): between launch k and k + 1 of every rank, an exchange (exchange_after(k)).
  void run_launch(uint32_t pos, uint32_t launch, bool feedback = false, uint32_t history_index = 0);
  // The exchange that follows launch `launch` (Program::exchanges) over the ranks joined to this
  // program, ordered after every rank's work so far and before any rank's next (events, no host
  // wait): `--tp-comm launches`.
  void exchange_after(uint32_t launch);
  void synchronize();                               // waits; throws on a CUDA error or a hang
  // The weight pipe as this program runs it: its ring's pages (0: no pipe, as in prefill) and the
  // cap on its copies in flight per SM (0: none; --pipe-inflight, or auto's choice).
  uint32_t pipe_pages() const { return pipe_pages_; }
  uint32_t pipe_inflight() const { return pipe_pages_ ? pipe_inflight_ : 0; }
  // The logits (logits_rows x logits_cols), synchronizing: copied into page-locked host memory that
  // this program owns, valid until its next read_logits(). A pageable copy of Llama's 128k fp32
  // logits cost 0.15 ms of a 4.5 ms time to first token (H100, session 27).
  const float* read_logits() const;
  // Tensor parallelism: `ranks` are every rank's programs, in rank order (this one among them),
  // built alike. Their arenas and counters become this one's peers (AllReduce, ArgmaxRanks,
  // kFlagWaitAllRanks): peer memory where a rank is on another GPU (peer access is enabled here;
  // mk::Error when the GPUs cannot reach each other). This program launches on its own stream so
  // that the ranks' launches run at once (ranks on one GPU each on its share of the SMs).
  void join_ranks(const std::vector<DeviceProgram*>& ranks);
  int32_t read_token(uint32_t row) const;
  std::vector<int32_t> read_history(uint32_t n) const;
  // Per-instruction [start, end] %globaltimer stamps of the next run (for mk trace).
  void enable_trace(bool on);
  // With timing on, each run() is bracketed by CUDA events on its stream, and last_run_ms() (after
  // synchronize) is the launch-to-end time between them, as the PyTorch baseline times its graphs.
  void enable_timing(bool on) { timing_ = on; }
  float last_run_ms() const;
  std::vector<uint64_t> read_trace() const;
  // The same run's phase stamps inside each instruction ([instructions][kTracePhases], 0 where not
  // stamped); empty unless built with MK_TRACE_PHASES.
  std::vector<uint64_t> read_phases() const;
  const Program& program() const { return program_; }
  // For an exchange between launches by another library (NCCL): this program's arena on its GPU
  // and the stream its launches go to (cudaStream_t; null before join_ranks).
  float* arena_ptr() const { return static_cast<float*>(arena_); }
  void* stream_handle() const { return stream_; }

 private:
  void make_act_maps();
  void launch(uint32_t pos, bool feedback, uint32_t history_index, uint32_t launch);
  DeviceModel& model_;
  const Program& program_;
  uint32_t epoch_ = 0;
  void* instructions_ = nullptr;
  void* queue_begin_ = nullptr;
  void* counters_ = nullptr;
  void* arena_ = nullptr;
  void* io_ = nullptr;
  void* history_ = nullptr;
  void* positions_ = nullptr;
  void* hang_ = nullptr;
  float* logits_host_ = nullptr;  // page-locked (cudaMallocHost), else heap where that failed
  bool logits_pinned_ = false;
  uint32_t tp_size_ = 1;
  std::vector<DeviceProgram*> ranks_;  // tensor parallelism: every rank's, this one among them
  void* launch_begin_ = nullptr;   // Program::launch_begin on the device (several launches a step)
  uint32_t last_launch_ = 0;       // for the hang report: where its queue positions count from
  void* launched_event_ = nullptr; // cudaEvent_t: this rank's launches so far (exchanges wait on it)
  void* exchanged_event_ = nullptr;  // cudaEvent_t: the last exchange this program ran
  void* rank_arenas_ = nullptr;    // device arrays of the ranks' pointers
  void* rank_counters_ = nullptr;
  void* stream_ = nullptr;         // cudaStream_t, tensor parallelism only
  void* trace_ = nullptr;
  void* act_maps_ = nullptr;        // TMA maps of the GEMM inputs (prefill on sm_90a), act_map_in_ their buffers
  std::vector<uint32_t> act_map_in_;
  size_t smem_bytes_ = 0;
  const void* kernel_ = nullptr;  // the megakernel build for this program (prefill or decode)
  uint32_t ops_smem_floats_ = 0;   // shared memory the ops may use; the pipe's pages follow it
  uint32_t pipe_pages_ = 0;
  uint32_t pipe_inflight_ = 0;
  bool hold_fenced_ = false;
  bool tracing_ = false;
  bool timing_ = false;
  void* run_events_[2] = {nullptr, nullptr};  // cudaEvent_t: before and after the last timed run
};

}  // namespace mk::cuda
