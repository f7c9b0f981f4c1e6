// Engine: the small C++ API the CLI and later layers build on. Loads a model (Hugging Face folder
// or GGUF), builds and schedules programs, keeps the KV cache, and turns tokens into logits.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "cpu/executor.h"
#include "graph/graph.h"
#include "runtime/weights.h"
#include "schedule/program.h"

namespace mk {
namespace cuda {
enum class WeightPipe : uint8_t;  // cuda/cuda_backend.h
enum class KernelBuild : uint8_t;
class DeviceModel;
class DeviceProgram;
class NcclGroup;
}  // namespace cuda

enum class Device { Auto, Cpu, Cuda };
// How tensor-parallel ranks meet. Kernel: on AllReduce / ArgmaxRanks inside the step's one launch
// (peer reads, counters across ranks). Launches: the step cut into a launch per all-reduce, the
// partial sums exchanged between launches (GraphOptions::tp_launches), as a launch per layer with
// an all-reduce between launches does: the path to compare against; on the GPU by a small exchange
// kernel (Launches) or by NCCL (Nccl: a GPU per rank, cuda/nccl_exchange.h).
enum class TpComm : uint8_t { Kernel, Launches, Nccl };
// The --tp-comm name of each (and bench's row suffix): "kernel", "launches", "nccl".
inline const char* tp_comm_name(TpComm c) {
  return c == TpComm::Launches ? "launches" : c == TpComm::Nccl ? "nccl" : "kernel";
}

struct EngineOptions {
  Device device = Device::Auto; // Auto: the GPU when one is usable, else the CPU
  bool bf16 = false;            // CPU: weights and KV cache in bf16 precision, as the GPU stores them
  uint32_t sms = 0;             // SMs the scheduler targets; 0: the GPU's, or 4 per CPU thread
  uint32_t threads = 0;         // CPU worker threads; 0: hardware threads
  std::optional<uint64_t> random_order;  // CPU: run ready instructions in seeded random order
  uint32_t max_ctx = 0;         // KV capacity; 0: the model's, capped at 4096
  uint32_t prefill_chunk = 256; // prompt tokens per prefill program run
  uint32_t kv_splits = 0;       // attention KV splits; 0: chosen by context (choose_kv_splits)
  uint32_t attn_head_blocks = 0;// decode attention units per KV head, by query heads; 0: by the model (GraphOptions)
  bool fuse_norms = true;
  bool split_k = true;          // a short prompt's o_proj and down by ranges of their input (GraphOptions)
  bool data_waits = true;       // GPU decode: waits by data for whole tagged rows (GraphOptions)
  cuda::WeightPipe gpu_weight_pipe{};  // GPU: how decode reads weights (default Auto: the weight pipe)
  uint32_t gpu_pipe_pages = 0;         // GPU: a cap on the weight pipe's ring pages (0: as many as fit)
  // GPU: a cap on the weight pipe's copies in flight per SM (0: none); unset: auto (cuda::auto_pipe_inflight)
  std::optional<uint32_t> gpu_pipe_inflight;
  cuda::KernelBuild gpu_kernel{};      // GPU: the generic decode build or a specialized one (cuda/spec.h)
  uint32_t max_waits = kMaxWaits;
  bool token_block_deps = true; // prefill tiles wait for their token block of the ops before (ScheduleOptions)
  bool split_tail = true;       // prefill: a short last wave of gated tiles in pieces (ScheduleOptions)
  bool check_weights = false;   // scan the loaded weights for NaN/Inf; mk::Error naming the first
  uint32_t tp = 1;              // tensor-parallel ranks (CPU executor: one thread group per rank)
  uint32_t tp_gpus = 0;         // GPUs the ranks spread over (runtime/tp_placement.h); 0: as many as fit
  TpComm tp_comm = TpComm::Kernel;
  // Loading progress: stage name, done, total.
  std::function<void(const std::string&, size_t, size_t)> progress;
};

class Engine {
 public:
  static std::unique_ptr<Engine> open(const std::filesystem::path& model, EngineOptions options = {});
  // From a config and any source of Hugging Face named tensors (tests use synthetic ones).
  static std::unique_ptr<Engine> create(const ModelConfig& config, const TensorSource& source,
                                        EngineOptions options = {});
  ~Engine();

  // Checks, before any weight is read, that the model fits: host memory (fp32 weights + KV cache,
  // against MemAvailable or $MK_HOST_MEMORY_LIMIT_BYTES) and, when it would run on a GPU, the GPU's
  // free memory (bf16 weights + KV cache). Throws mk::ResourceError with the sizes.
  static void check_memory(const ModelConfig& config, const EngineOptions& options);

  const ModelConfig& config() const { return config_; }
  const EngineOptions& options() const { return options_; }
  uint32_t position() const { return pos_; }
  uint32_t max_context() const { return max_ctx_; }

  // Runs `tokens` from the current position (prefill in chunks when there are several) and
  // returns the logits of the last one, or of every one ([n, vocab]) with all_logits.
  std::vector<float> forward(std::span<const int32_t> tokens, bool all_logits = false);
  // The greedy next token that the program's own Argmax computed in the last forward().
  int32_t last_argmax() const { return last_argmax_; }
  // Greedy decoding of `steps` tokens from last_argmax(), with no host round trip between steps on
  // the GPU (each step's argmax feeds the next). Returns the tokens; last_argmax() is the next one.
  std::vector<int32_t> decode_greedy(uint32_t steps);
  // Builds now every decode program that the next `steps` steps from the current position will
  // run (they differ in their KV splits), so that timing those steps times no scheduling: mk bench's
  // warm-up. Generation builds them when it first reaches them.
  void prepare_decode(uint32_t steps);
  bool on_gpu() const { return device_ == Device::Cuda; }
  // One greedy decode step with a timestamp (ns) at the start and end of every instruction:
  // [2 * i] and [2 * i + 1] for instruction i of the decode program; %globaltimer on the GPU, the
  // steady clock on the CPU executor. With tensor parallelism, rank 0's program and stamps.
  std::vector<uint64_t> trace_decode_step();
  // The same for one prefill program run of `tokens` (at most prefill_chunk of them) from the
  // current position; the program is the one compiled(tokens.size(), false) returns.
  std::vector<uint64_t> trace_prefill(std::span<const int32_t> tokens);
  // The last traced run's stamps inside each instruction (runtime/trace.h, summarize_phases): GPU
  // builds configured with -DMK_TRACE_PHASES=ON only; else empty.
  const std::vector<uint64_t>& trace_phases() const { return trace_phases_; }
  // GPU: time every program run by CUDA events on its stream (launch to end, no host work), and the
  // last forward()'s runs summed (ms; 0 on the CPU or with timing off). mk bench's TTFT.
  void time_gpu_runs(bool on) { time_gpu_runs_ = on; }
  double last_forward_gpu_ms() const { return last_forward_gpu_ms_; }
  // Where the last forward()'s host time went (ms, summed over its prefill chunks; all 0 on the
  // CPU): the tokens' upload, the launches' enqueueing, the wait for the runs to end
  // (cudaDeviceSynchronize and the hang report), and the logits and token read back and gathered.
  // What the host clock measures beyond the CUDA events, taken apart.
  struct HostPhases {
    double upload_ms = 0, launch_ms = 0, wait_ms = 0, read_ms = 0;
  };
  const HostPhases& last_forward_host_phases() const { return host_phases_; }
  // The GPU's name (" xN" after it where the ranks of --tp spread over N GPUs), or the CPU's threads.
  std::string device_name() const;
  // The build of the megakernel that decode steps run on (cuda::decode_build): "generic" or the
  // specialized build's name (cuda/spec.h); "cpu" on the CPU.
  const std::string& decode_build() const { return decode_build_; }
  uint32_t gpus_used() const { return gpus_used_; }  // 0 on the CPU
  void reset();  // forget the conversation: position 0 (the cache is overwritten as it refills)
  // Step back to position `pos` (<= position()): the cache keeps the first `pos` tokens and the
  // rest is overwritten as new tokens run. last_argmax() is unknown until the next forward().
  void rewind(uint32_t pos);

  // The program that runs `n_tokens` at once from the current position, built and scheduled on
  // first use. Programs differ by the context they run at only in their attention's KV splits and,
  // from kLongSpanKeys positions on, its head blocks, so decode has a few (choose_kv_splits,
  // long_span), and generation moves from one to the next as it grows.
  struct Compiled {
    OpGraph graph;
    Program program;
    std::unique_ptr<CpuExecutor> executor;        // CPU engines
    std::unique_ptr<cuda::DeviceProgram> gpu;     // GPU engines
    std::vector<std::unique_ptr<Compiled>> other_ranks;  // tensor parallelism: ranks 1 .. tp - 1
    std::vector<Compiled*> ranks();                      // every rank's, this one first
  };
  // At most kProgramCache programs are kept (each prompt length makes one): past that, all but the
  // decode programs are dropped, so a long chat does not grow memory without bound.
  Compiled& compiled(uint32_t n_tokens, bool all_logits) { return compiled_at(n_tokens, all_logits, pos_); }
  static constexpr size_t kProgramCache = 8;
  size_t programs_cached() const { return programs_.size(); }
  const HostWeights& weights() const { return weights_; }

 private:
  Engine() = default;
  // The options of the program that runs n_tokens from `pos`, its KV splits chosen.
  GraphOptions graph_options(uint32_t n_tokens, bool all_logits, uint32_t pos) const;
  // The program that runs n_tokens from position `pos`.
  Compiled& compiled_at(uint32_t n_tokens, bool all_logits, uint32_t pos);
  void check_tokens(std::span<const int32_t> tokens) const;  // non-empty, in the vocabulary, fit the context
  std::vector<uint64_t> trace_run(std::span<const int32_t> tokens);
  // Runs a CPU program for n tokens from tokens[0] on every rank at once (one host thread per
  // rank); returns this step's logits rows ([logits_rows, vocab], gathered from the ranks' slices).
  const float* run_cpu(Compiled& c, const int32_t* tokens, uint32_t n);
  // The same on the GPU; logits only when asked (nullptr otherwise).
  const float* run_gpu(Compiled& c, const int32_t* tokens, uint32_t n, bool want_logits);
  // Queues one step of `c` at `pos` on every rank's GPU (its launches, and the exchanges between
  // them), asynchronously; with `feedback`, each step's token feeds the next (DeviceProgram::run).
  void launch_step(Compiled& c, uint32_t pos, bool feedback, uint32_t history_index);
  // [logits_rows, vocab] from every rank's slice (one rank: its logits), read by `read`.
  const float* gather_logits(const std::vector<Compiled*>& ranks, const std::function<const float*(Compiled*)>& read);

  // Tensor parallelism on the CPU: ranks 1 .. tp - 1's weights and KV caches (rank 0's are the
  // fields above), and the logits gathered from every rank.
  struct Rank {
    HostWeights weights;
    std::vector<const float*> table;
    std::vector<float> kv;                      // CPU
    std::unique_ptr<cuda::DeviceModel> gpu;     // GPU: its weights and KV cache
    Rank();
    Rank(Rank&&) noexcept;
    ~Rank();
  };
  std::vector<Rank> other_ranks_;
  std::vector<float> gathered_logits_;

  ModelConfig config_;
  EngineOptions options_;
  uint32_t max_ctx_ = 0;
  HostWeights weights_;
  std::vector<const float*> table_;
  std::vector<float> kv_;
  Device device_ = Device::Cpu;
  std::unique_ptr<cuda::DeviceModel> gpu_model_;
  uint32_t gpus_used_ = 0;
  std::string decode_build_ = "cpu";  // decided at load from the decode graph's dimensions
  std::unique_ptr<cuda::NcclGroup> nccl_;  // --tp-comm nccl: the ranks' communicators
  // (n_tokens, all_logits, KV splits, a decode at a long span: fewer head blocks, decode_head_blocks).
  using ProgramKey = std::tuple<uint32_t, bool, uint32_t, bool>;
  std::map<ProgramKey, std::unique_ptr<Compiled>> programs_;
  uint32_t pos_ = 0;
  std::vector<uint64_t> trace_phases_;
  int32_t last_argmax_ = -1;
  bool time_gpu_runs_ = false;
  double last_forward_gpu_ms_ = 0;
  HostPhases host_phases_;
};

}  // namespace mk
