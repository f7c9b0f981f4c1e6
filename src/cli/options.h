// Flags that several `mk` commands share (model path, executor shape) and the EngineOptions they
// make, so every command spells and documents them the same way.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "cuda/cuda_backend.h"
#include "runtime/engine.h"

namespace mk::cli {

// The flags that shape the op graph and its schedule: shared by `mk schedule`, which builds a
// program from a config alone, and the commands that run one.
struct GraphFlags {
  uint32_t kv_splits = 0, attn_head_blocks = 0;
  bool no_fuse_norms = false, no_block_deps = false, no_split_k = false, no_data_waits = false, no_split_tail = false;

  void add(CLI::App& app) {
    app.add_option("--kv-splits", kv_splits,
                   "attention KV splits; 0 = by context (one for prefill and up to " + std::to_string(kSingleSplitKeys) +
                       " positions, else a unit per SM)")
        ->check(CLI::Range(0, 256));
    app.add_option("--attn-head-blocks", attn_head_blocks,
                   "decode: attention units per KV head, each taking that share of the head's query heads "
                   "(must divide them; 1 = the whole group in one unit; 0 = by the model: blocks of fewer heads "
                   "where a layer has few KV heads, e.g. 3 for Qwen2.5-1.5B's 2, 2 from " + std::to_string(kLongSpanKeys) +
                       " positions on)")
        ->check(CLI::Range(0, 256));
    app.add_flag("--no-fuse-norms", no_fuse_norms, "run norms as separate instructions");
    app.add_flag("--no-block-deps", no_block_deps,
                 "prefill: every tile waits for all tiles of the ops before it, not only for its own block of "
                 "128 prompt tokens (to compare)");
    app.add_flag("--no-split-k", no_split_k,
                 "prefill: short prompts' o_proj and down tiles take their whole input, not ranges of it (to compare)");
    app.add_flag("--no-split-tail", no_split_tail,
                 "prefill: a short last wave of gate/up tiles keeps whole tiles rather than pieces of them (to compare)");
    app.add_flag("--no-data-waits", no_data_waits,
                 "GPU decode: stages that read a whole tagged row from the stage before wait for that stage's counter, "
                 "not for the row's tags (to compare)");
  }
  // Into GraphOptions (`mk schedule`) or EngineOptions, which name these fields alike.
  template <class Options>
  void apply(Options& o) const {
    o.kv_splits = kv_splits;
    o.attn_head_blocks = attn_head_blocks;
    o.fuse_norms = !no_fuse_norms;
    o.split_k = !no_split_k;
    o.data_waits = !no_data_waits;
  }
  // The scheduler's: into ScheduleOptions (`mk schedule`) or EngineOptions, alike named too.
  template <class Options>
  void apply_schedule(Options& o) const {
    o.token_block_deps = !no_block_deps;
    o.split_tail = !no_split_tail;
  }
};

// --pipe-inflight's value: unset for "auto" (the GPU backend's default), else a count of 0-16 pages.
inline std::optional<uint32_t> pipe_inflight_value(const std::string& v) {
  if (v == "auto") return std::nullopt;
  const bool digits = !v.empty() && v.size() <= 2 && v.find_first_not_of("0123456789") == std::string::npos;
  if (digits)
    if (const unsigned long pages = std::stoul(v); pages <= 16) return uint32_t(pages);
  throw CLI::ValidationError("--pipe-inflight", "expected auto or a number of pages, 0-16");
}

struct ExecFlags {
  uint32_t sms = 0, threads = 0, ctx = 0, max_waits = kMaxWaits, prefill_chunk = 256, tp = 1, tp_gpus = 0;
  uint32_t pipe_pages = 0;
  int64_t random_order = -1;
  bool bf16 = false, check_weights = false;
  GraphFlags graph;
  std::string weight_pipe = "auto", kernel = "auto", tp_comm = "kernel";
  std::optional<uint32_t> pipe_inflight;  // unset: auto, the GPU backend's default
  std::string device = "auto";

  void add(CLI::App& app) {
    app.add_option("--device", device, "where to run: auto (the GPU when one is usable), cpu or cuda")
        ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
    app.add_flag("--bf16", bf16, "CPU: round weights, the KV cache and prefill activations to bf16, as the GPU stores them");
    app.add_option("--sms", sms, "SMs (instruction queues) the scheduler targets; 0 = 4 per CPU thread");
    app.add_option("--threads", threads, "CPU worker threads; 0 = all hardware threads");
    app.add_option("--ctx", ctx, "context length (KV cache capacity); 0 = the model's, at most 4096");
    app.add_option("--random-order", random_order,
                   "CPU: run ready instructions in random order with this seed (checks the counters)");
    app.add_option("--max-waits", max_waits, "dependency slots per instruction (1-3; fewer adds barriers)")
        ->check(CLI::Range(1, 3));
    app.add_option("--prefill-chunk", prefill_chunk, "prompt tokens per prefill run")->check(CLI::Range(1, 4096));
    graph.add(app);
    app.add_option("--weight-pipe", weight_pipe,
                   "GPU: how decode reads weights: auto (a producer warp streams them into shared memory ahead "
                   "of use, with cp.async.bulk on sm_90+), bulk, cp-async, or off (plain loads)")
        ->check(CLI::IsMember({"auto", "bulk", "cp-async", "off"}));
    app.add_option("--pipe-pages", pipe_pages,
                   "GPU: at most this many 16 KB pages in the weight pipe's ring (2-16; 0 = as many as fit in "
                   "shared memory): to measure what the ring's depth is worth")
        ->check(CLI::Validator(
            [](const std::string& v) -> std::string {
              return v == "1" ? "a ring needs at least 2 pages (0: as many as fit)" : "";
            },
            "0 or 2-16"))
        ->check(CLI::Range(0, 16));
    // Parsed once, by pipe_inflight_value: "auto" or 0-16 is no single CLI11 check.
    app.add_option_function<std::string>(
           "--pipe-inflight", [this](const std::string& v) { pipe_inflight = pipe_inflight_value(v); },
           "GPU: at most this many of the weight pipe's page copies in flight on each SM (1-16; 0 = no cap, "
           "the whole ring); auto: 3 on an H100's memory (2.5-4 TB/s peak) where every weight page is a "
           "whole 16 KB one (1-3% faster there for Llama-3.2-1B and 3B), else none (3 was 6-9% slower on an H200)")
        ->type_name("TEXT:auto or 0-16");
    app.add_option("--kernel", kernel,
                   "GPU: the decode build: generic (model dimensions read at run time: any model), specialized "
                   "(compiled for Llama-3.2-1B's dimensions; an error for other models) or auto (the specialized build "
                   "where the model matches it, 1-4% faster on the H100; else generic)")
        ->check(CLI::IsMember({"auto", "generic", "specialized"}));
    app.add_option("--tp", tp,
                   "tensor parallelism: split the model over this many ranks (heads, MLP, vocabulary), which "
                   "meet on all-reduce instructions inside the step: a GPU each where the host has enough that "
                   "reach each other (peer access), else several ranks to a GPU, each on its share of the SMs")
        ->check(CLI::Range(1, 64));
    app.add_option("--tp-comm", tp_comm,
                   "how the --tp ranks meet: kernel (all-reduce instructions inside the step's one launch, "
                   "reading each other's memory) or launches (a launch per all-reduce, the partial sums "
                   "exchanged between launches, as a launch per layer with an all-reduce does: to compare) or "
                   "nccl (the same launches, the exchanges by NCCL: a GPU per rank; $MK_NCCL_LIBRARY names "
                   "libnccl.so.2 if the loader does not find it)")
        ->check(CLI::IsMember({"kernel", "launches", "nccl"}));
    app.add_option("--tp-gpus", tp_gpus,
                   "GPU: spread the --tp ranks over this many GPUs (it must divide --tp; 1: every rank on the "
                   "first GPU); default: as many as the host has that divide --tp")
        ->check(CLI::Range(1, 64));
    app.add_flag("--check-weights", check_weights,
                 "scan the loaded weights for NaN/Inf and stop with an error naming the first (tensor, index, value)");
  }

  EngineOptions engine_options() const {
    EngineOptions o;
    o.device = device == "cpu" ? Device::Cpu : device == "cuda" ? Device::Cuda : Device::Auto;
    o.bf16 = bf16;
    o.sms = sms;
    o.threads = threads;
    o.max_ctx = ctx;
    o.max_waits = max_waits;
    o.prefill_chunk = prefill_chunk;
    graph.apply(o);
    graph.apply_schedule(o);
    o.gpu_weight_pipe = weight_pipe == "bulk"       ? cuda::WeightPipe::Bulk
                        : weight_pipe == "cp-async" ? cuda::WeightPipe::CpAsync
                        : weight_pipe == "off"      ? cuda::WeightPipe::Off
                                                    : cuda::WeightPipe::Auto;
    o.gpu_pipe_pages = pipe_pages;
    o.gpu_pipe_inflight = pipe_inflight;
    o.gpu_kernel = kernel == "generic"       ? cuda::KernelBuild::Generic
                   : kernel == "specialized" ? cuda::KernelBuild::Specialized
                                             : cuda::KernelBuild::Auto;
    o.check_weights = check_weights;
    o.tp = tp;
    o.tp_gpus = tp_gpus;
    for (const TpComm c : {TpComm::Kernel, TpComm::Launches, TpComm::Nccl})
      if (tp_comm == tp_comm_name(c)) o.tp_comm = c;
    if (random_order >= 0) o.random_order = static_cast<uint64_t>(random_order);
    return o;
  }
};

}  // namespace mk::cli
