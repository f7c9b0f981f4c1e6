// Engine: model loading, program cache, KV cache and the prefill/decode loop on the CPU executor.
#include "runtime/engine.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "model/error.h"
#include "model/gguf/gguf_file.h"
#include "model/gguf/gguf_model.h"
#include "model/safetensors.h"
#include "cuda/cuda_backend.h"
#include "cuda/nccl_exchange.h"
#include "runtime/limits.h"
#include "runtime/tp_placement.h"

namespace mk {
namespace {

uint32_t context_length(const ModelConfig& c, const EngineOptions& o) {
  return o.max_ctx ? o.max_ctx : static_cast<uint32_t>(std::min(c.max_position_embeddings, 4096));
}

GraphOptions graph_options_for(const EngineOptions& e, uint32_t max_ctx, uint32_t n_tokens, bool all_logits,
                               uint32_t pos = 0) {
  GraphOptions o;
  o.n_tokens = n_tokens;
  o.max_ctx = max_ctx;
  o.kv_splits = e.kv_splits;
  o.attn_head_blocks = e.attn_head_blocks;
  o.kv_span = std::min(max_ctx, pos + n_tokens);
  o.all_logits = all_logits;
  o.fuse_norms = e.fuse_norms;
  o.split_k = e.split_k;
  o.data_waits = e.data_waits;
  o.num_sms = e.sms;
  o.tp_size = e.tp;
  o.tp_launches = e.tp > 1 && e.tp_comm != TpComm::Kernel;
  return o;
}

// The GPUs the options ask for and where the ranks go on them. No GPU (empty) for --device cpu or
// when auto finds none usable; an error naming why for --device cuda without one.
struct GpuPlan {
  std::vector<cuda::DeviceInfo> gpus;  // in ordinal order; the first `placement.gpus` are used
  TpPlacement placement;               // when there are GPUs
};

GpuPlan plan_gpus(const EngineOptions& o) {
  GpuPlan plan;
  if (o.device == Device::Cpu) return plan;
  cuda::DeviceInfo first = cuda::query_device(0);
  if (!first.present) {
    if (o.device == Device::Cuda) throw Error("--device cuda: no usable CUDA device (" + first.why_absent + ")");
    return plan;
  }
  plan.gpus.push_back(std::move(first));
  // GPUs past the first only where ranks may spread over them: a query opens a context on its GPU.
  const int wanted = o.tp <= 1 ? 1 : int(o.tp_gpus ? o.tp_gpus : o.tp);
  for (int i = 1, n = std::min(wanted, cuda::device_count()); i < n; ++i) {
    cuda::DeviceInfo g = cuda::query_device(i);
    if (!g.present) break;
    plan.gpus.push_back(std::move(g));
  }
  plan.placement = place_ranks(std::max(1u, o.tp), o.tp_gpus, o.sms, plan.gpus, cuda::peer_access);
  return plan;
}

// The host's and the plan's GPUs' memory against every rank of `go` (check_ranks_memory). --tp 0
// is refused by build_graph (tp_split).
void check_memory_for(const ModelConfig& c, const GraphOptions& go, uint32_t max_ctx, const GpuPlan& plan) {
  std::vector<GpuMemory> gpus;
  for (const cuda::DeviceInfo& g : plan.gpus) gpus.push_back({g.free_bytes, g.total_bytes});
  check_ranks_memory(c, go, max_ctx, gpus, plan.placement.device);
}

}  // namespace

void Engine::check_memory(const ModelConfig& config, const EngineOptions& options) {
  const uint32_t max_ctx = context_length(config, options);
  check_memory_for(config, graph_options_for(options, max_ctx, 1, false), max_ctx, plan_gpus(options));
}

std::unique_ptr<Engine> Engine::open(const std::filesystem::path& model, EngineOptions options) {
  if (std::filesystem::is_directory(model)) {
    const ModelConfig config = load_config(model);
    return create(config, *SafetensorsModel::open(model), std::move(options));
  }
  if (!std::filesystem::exists(model)) throw Error(model.string() + ": no such file or folder");
  if (model.extension() != ".gguf")
    throw Error(model.string() + ": not a model folder (config.json + safetensors) or a .gguf file");
  auto progress = [&](size_t done, size_t total) {
    if (options.progress) options.progress("dequantizing", done, total);
  };
  // Before dequantizing (slow, and as large as the weights): does the model fit?
  std::unique_ptr<GgufFile> file = GgufFile::open(model);
  check_memory(gguf_model_config(*file), options);
  const auto gguf = GgufModel::open(std::move(file), progress);
  return create(gguf->config(), *gguf, std::move(options));
}

std::unique_ptr<Engine> Engine::create(const ModelConfig& config, const TensorSource& source,
                                       EngineOptions options) {
  std::unique_ptr<Engine> e(new Engine());
  e->options_ = std::move(options);
  e->config_ = config;
  const ModelConfig& c = e->config_;
  e->max_ctx_ = context_length(c, e->options_);
  if (c.learned_pos && e->max_ctx_ > static_cast<uint32_t>(c.max_position_embeddings))
    throw Error("context " + std::to_string(e->max_ctx_) + " exceeds the model's " +
                std::to_string(c.max_position_embeddings) + " positions");
  if (!e->options_.threads) e->options_.threads = std::max(1u, std::thread::hardware_concurrency());
  e->device_ = Device::Cpu;
  const uint32_t tp = e->options_.tp;
  if (!tp) throw Error("--tp 0: tensor parallelism needs at least one rank");
  const GpuPlan plan = plan_gpus(e->options_);
  const bool on_gpu = !plan.gpus.empty();
  if (on_gpu) {
    e->device_ = Device::Cuda;
    e->options_.sms = plan.placement.sms;  // every rank's programs are scheduled alike
    e->gpus_used_ = plan.placement.gpus;
  }
  if (!e->options_.sms) e->options_.sms = 4 * e->options_.threads;
  if (tp > 1 && e->options_.tp_comm == TpComm::Nccl) {
    if (!on_gpu)
      throw Error("--tp-comm nccl runs on GPUs; on the CPU, --tp-comm launches is the same path");
    if (plan.placement.gpus != tp)
      throw Error("--tp-comm nccl takes a GPU per rank: " + std::to_string(tp) + " ranks on " +
                  std::to_string(plan.placement.gpus) + " GPU(s) (--tp-comm launches shares GPUs)");
  }

  // The weight table is the same for every program: build it from the decode graph.
  const OpGraph g = build_graph(c, e->graph_options(1, false, 0));
  check_memory_for(c, e->graph_options(1, false, 0), e->max_ctx_, plan);
  auto progress = [&](size_t done, size_t total) {
    if (e->options_.progress) e->options_.progress("loading weights", done, total);
  };
  // One rank's weights (checked and rounded as asked) and their table, and its KV cache on the
  // host or its copy on its GPU (weights and KV cache).
  auto load_rank = [&](uint32_t rank, const OpGraph& graph, HostWeights& weights, std::vector<const float*>& table,
                       std::vector<float>& kv, std::unique_ptr<cuda::DeviceModel>& gpu_model) {
    weights = load_weights(c, graph.weights, source, progress);
    if (e->options_.check_weights) check_weights_finite(weights, graph.weights, source);
    if (e->options_.bf16)
      for (auto& t : weights.data)
        for (float& v : t) v = bf16_to_f32(f32_to_bf16(v));
    table = weights.table();
    if (on_gpu) {
      gpu_model = std::make_unique<cuda::DeviceModel>(graph.weights, weights, graph.dims, plan.placement.device[rank]);
      gpu_model->weight_pipe = e->options_.gpu_weight_pipe;
      gpu_model->max_pipe_pages = e->options_.gpu_pipe_pages;
      gpu_model->pipe_inflight = e->options_.gpu_pipe_inflight;
      gpu_model->kernel_build = e->options_.gpu_kernel;
    } else {
      kv.assign(kv_cache_elements(graph.dims), 0.0f);
    }
  };
  load_rank(0, g, e->weights_, e->table_, e->kv_, e->gpu_model_);
  // Named from the same dimensions every decode program has. `--kernel specialized` on a model
  // without a specialized build is refused when its first decode program is made (DeviceProgram).
  const char* special = cuda::specialized_build(g.dims);
  if (on_gpu)
    e->decode_build_ =
        special && cuda::decode_build(e->options_.gpu_kernel, g.dims) == cuda::KernelBuild::Specialized ? special
                                                                                                         : "generic";
  for (uint32_t r = 1; r < tp; ++r) {
    GraphOptions go = e->graph_options(1, false, 0);
    go.tp_rank = r;
    Rank& rank = e->other_ranks_.emplace_back();
    load_rank(r, build_graph(c, go), rank.weights, rank.table, rank.kv, rank.gpu);
  }
  if (tp > 1 && on_gpu && e->options_.tp_comm == TpComm::Nccl)
    e->nccl_ = std::make_unique<cuda::NcclGroup>(plan.placement.device);
  return e;
}

Engine::~Engine() = default;

std::vector<Engine::Compiled*> Engine::Compiled::ranks() {
  std::vector<Compiled*> all{this};
  for (auto& peer : other_ranks) all.push_back(peer.get());
  return all;
}
Engine::Rank::Rank() = default;
Engine::Rank::Rank(Rank&&) noexcept = default;
Engine::Rank::~Rank() = default;

GraphOptions Engine::graph_options(uint32_t n_tokens, bool all_logits, uint32_t pos) const {
  GraphOptions o = graph_options_for(options_, max_ctx_, n_tokens, all_logits, pos);
  o.kv_splits = choose_kv_splits(config_, o);
  // The GPU's prefill tiles take bf16 operands; the CPU mirrors that with --bf16.
  o.bf16_activations = device_ == Device::Cuda || options_.bf16;
  // The cost model's bytes a weight: the GPU streams bf16 weights (as `mk schedule` assumes), the
  // CPU executor reads fp32. Until session 50 every program was costed at 4, so the GPU ran queues
  // that `mk schedule` did not print and `mk trace` counted its weights twice; 2 measured within
  // 0.2% of 4 in decode (H100 and H200) and 0.4% in 512-token prefills (H100, sched_wb A/Bs).
  o.weight_bytes = device_ == Device::Cuda ? 2 : 4;
  return o;
}

Engine::Compiled& Engine::compiled_at(uint32_t n_tokens, bool all_logits, uint32_t pos) {
  const GraphOptions go = graph_options(n_tokens, all_logits, pos);
  const ProgramKey key{n_tokens, all_logits, go.kv_splits, n_tokens == 1 && long_span(go)};
  auto is_decode = [](const auto& kv) { return std::get<0>(kv.first) == 1 && !std::get<1>(kv.first); };
  if (!programs_.count(key) && programs_.size() >= kProgramCache)
    std::erase_if(programs_, [&](const auto& kv) { return !is_decode(kv); });
  auto& slot = programs_[key];
  if (!slot) {
    slot = std::make_unique<Compiled>();
    slot->graph = build_graph(config_, go);
    ScheduleOptions so;
    so.num_sms = options_.sms;
    so.max_waits = options_.max_waits;
    so.token_block_deps = options_.token_block_deps;
    so.split_tail = options_.split_tail;
    slot->program = schedule(slot->graph, so);
    CpuExecOptions eo;
    eo.threads = std::max(1u, options_.threads / options_.tp);  // the ranks share the machine
    eo.random_order = options_.random_order;
    eo.kv_bf16 = options_.bf16;
    if (device_ == Device::Cuda)
      slot->gpu = std::make_unique<cuda::DeviceProgram>(*gpu_model_, slot->program);
    else
      slot->executor = std::make_unique<CpuExecutor>(slot->program, table_, kv_.data(), eo);
    for (uint32_t r = 1; r < options_.tp; ++r) {
      GraphOptions gr = go;
      gr.tp_rank = r;
      auto& peer = slot->other_ranks.emplace_back(std::make_unique<Compiled>());
      peer->graph = build_graph(config_, gr);
      peer->program = schedule(peer->graph, so);
      Rank& rank = other_ranks_[r - 1];
      if (device_ == Device::Cuda)
        peer->gpu = std::make_unique<cuda::DeviceProgram>(*rank.gpu, peer->program);
      else
        peer->executor = std::make_unique<CpuExecutor>(peer->program, rank.table, rank.kv.data(), eo);
    }
    // Ranks meeting between launches exchange through CpuExecutor::exchange on the CPU: their
    // executors read no peer; on the GPU the ranks' programs are joined all the same (their streams
    // and the exchange's pointers) and the kernel reads no peer.
    if (options_.tp > 1 && (device_ == Device::Cuda || slot->program.launches == 1)) {
      std::vector<CpuExecutor*> executors;
      std::vector<cuda::DeviceProgram*> programs;
      for (Compiled* r : slot->ranks()) {
        executors.push_back(r->executor.get());
        programs.push_back(r->gpu.get());
      }
      for (size_t r = 0; r < executors.size(); ++r)
        if (device_ == Device::Cuda)
          programs[r]->join_ranks(programs);
        else
          executors[r]->join_ranks(executors);
    }
  }
  return *slot;
}

namespace {

// Adds the milliseconds since `t` to `sum` and restarts `t` (forward()'s host phases).
void lap(std::chrono::steady_clock::time_point& t, double& sum) {
  const auto now = std::chrono::steady_clock::now();
  sum += std::chrono::duration<double, std::milli>(now - t).count();
  t = now;
}

}  // namespace

const float* Engine::run_gpu(Compiled& c, const int32_t* tokens, uint32_t n, bool want_logits) {
  const std::vector<Compiled*> ranks = c.ranks();
  auto t = std::chrono::steady_clock::now();
  for (Compiled* r : ranks) {
    r->gpu->set_tokens(tokens, n);
    r->gpu->enable_timing(time_gpu_runs_);
  }
  lap(t, host_phases_.upload_ms);
  launch_step(c, pos_, false, 0);
  lap(t, host_phases_.launch_ms);
  for (Compiled* r : ranks) r->gpu->synchronize();
  lap(t, host_phases_.wait_ms);
  if (time_gpu_runs_) {
    float slowest = 0;
    for (Compiled* r : ranks) slowest = std::max(slowest, r->gpu->last_run_ms());
    last_forward_gpu_ms_ += slowest;
  }
  if (!want_logits) return nullptr;
  const float* logits = gather_logits(ranks, [](Compiled* r) { return r->gpu->read_logits(); });
  lap(t, host_phases_.read_ms);
  return logits;
}

void Engine::launch_step(Compiled& c, uint32_t pos, bool feedback, uint32_t history_index) {
  std::vector<cuda::DeviceProgram*> programs;
  for (Compiled* r : c.ranks()) programs.push_back(r->gpu.get());
  // Every rank's launch first (each on its own stream with tensor parallelism, so they run at
  // once and meet on AllReduce); a step ends when all ranks have finished it. Ranks that meet
  // between launches: each launch on every rank, then the exchange.
  for (uint32_t k = 0; k < c.program.launches; ++k) {
    for (cuda::DeviceProgram* p : programs) p->run_launch(pos, k, feedback, history_index);
    if (k + 1 == c.program.launches) break;
    if (nccl_) {
      nccl_->exchange(programs, c.program.exchanges[k]);
    } else {
      c.gpu->exchange_after(k);
    }
  }
}

const float* Engine::gather_logits(const std::vector<Compiled*>& ranks,
                                   const std::function<const float*(Compiled*)>& read) {
  // One rank holds the whole vocabulary: its logits as they are, no copy.
  const uint32_t V = config_.vocab_size, rows = ranks[0]->program.logits_rows;
  if (ranks.size() == 1 && ranks[0]->program.logits_cols == V) return read(ranks[0]);
  // Rank r's logits are its vocabulary slice: rows of its own width, placed at its first row.
  gathered_logits_.assign(size_t(rows) * V, 0.0f);
  for (uint32_t r = 0; r < ranks.size(); ++r) {
    const uint32_t cols = ranks[r]->program.logits_cols, first = tp_split(config_, options_.tp, r).vocab0;
    const float* slice = read(ranks[r]);
    for (uint32_t m = 0; m < rows; ++m)
      std::copy(slice + size_t(m) * cols, slice + size_t(m + 1) * cols, gathered_logits_.begin() + size_t(m) * V + first);
  }
  return gathered_logits_.data();
}

const float* Engine::run_cpu(Compiled& c, const int32_t* tokens, uint32_t n) {
  const std::vector<Compiled*> ranks = c.ranks();
  for (Compiled* r : ranks) std::copy(tokens, tokens + n, r->executor->io() + r->program.tokens_in);
  if (ranks.size() == 1) {
    c.executor->run(pos_);
    return c.executor->arena() + c.program.logits;
  }
  // One host thread per rank; the ranks meet inside the step on AllReduce and ArgmaxRanks, or
  // between its launches on the exchanges.
  std::vector<CpuExecutor*> executors;
  for (Compiled* r : ranks) executors.push_back(r->executor.get());
  for (uint32_t k = 0; k < c.program.launches; ++k) {
    std::vector<std::exception_ptr> errors(ranks.size());
    std::vector<std::thread> threads;
    auto run_rank = [&](size_t r) {
      try {
        executors[r]->run_launch(pos_, k);
      } catch (...) {
        errors[r] = std::current_exception();
      }
    };
    for (size_t r = 1; r < ranks.size(); ++r) threads.emplace_back(run_rank, r);
    run_rank(0);
    for (auto& t : threads) t.join();
    for (const auto& e : errors)
      if (e) std::rethrow_exception(e);
    if (k + 1 < c.program.launches) CpuExecutor::exchange(executors, c.program.exchanges[k]);
  }
  return gather_logits(ranks, [](Compiled* r) { return r->executor->arena() + r->program.logits; });
}

void Engine::check_tokens(std::span<const int32_t> tokens) const {
  if (tokens.empty()) throw Error("no tokens to run");
  if (pos_ + tokens.size() > max_ctx_)
    throw Error(std::to_string(tokens.size()) + " more tokens at position " + std::to_string(pos_) +
                " exceed the context of " + std::to_string(max_ctx_) + " tokens");
  for (int32_t t : tokens)
    if (t < 0 || t >= config_.vocab_size)
      throw Error("token id " + std::to_string(t) + " is outside the vocabulary of " +
                  std::to_string(config_.vocab_size));
}

std::vector<float> Engine::forward(std::span<const int32_t> tokens, bool all_logits) {
  check_tokens(tokens);
  last_forward_gpu_ms_ = 0;
  host_phases_ = {};
  const uint32_t V = config_.vocab_size;
  std::vector<float> out;
  for (size_t start = 0; start < tokens.size();) {
    const uint32_t n = static_cast<uint32_t>(std::min<size_t>(options_.prefill_chunk, tokens.size() - start));
    const bool last_chunk = start + n == tokens.size();
    Compiled& c = compiled(n, all_logits);
    const float* logits = nullptr;
    std::chrono::steady_clock::time_point t;  // the host phases' read back goes on after run_gpu
    if (c.gpu) {
      logits = run_gpu(c, tokens.data() + start, n, all_logits || last_chunk);
      t = std::chrono::steady_clock::now();
      if (last_chunk) last_argmax_ = c.gpu->read_token(c.program.logits_rows - 1);
    }
    if (c.executor) {
      logits = run_cpu(c, tokens.data() + start, n);
      if (last_chunk) last_argmax_ = c.executor->io()[c.program.tokens_out + c.program.logits_rows - 1];
    }
    pos_ += n;
    if (all_logits)
      out.insert(out.end(), logits, logits + size_t(n) * V);
    else if (last_chunk)
      out.assign(logits, logits + V);
    if (c.gpu) lap(t, host_phases_.read_ms);
    start += n;
  }
  return out;
}

void Engine::reset() { rewind(0); }

void Engine::rewind(uint32_t pos) {
  if (pos > pos_)
    throw Error("rewind to position " + std::to_string(pos) + " past the current " + std::to_string(pos_));
  pos_ = pos;
  last_argmax_ = -1;
}

std::vector<int32_t> Engine::decode_greedy(uint32_t steps) {
  if (last_argmax_ < 0) throw Error("decode_greedy needs a forward() first");
  if (pos_ + steps > max_ctx_)
    throw Error(std::to_string(steps) + " more tokens at position " + std::to_string(pos_) +
                " exceed the context of " + std::to_string(max_ctx_) + " tokens");
  std::vector<int32_t> out;
  if (device_ == Device::Cuda) {
    // Runs of steps that share a program (the same KV splits) loop on the device; the token crosses
    // to the next program through the host once per change. With tensor parallelism every rank's
    // steps are queued on its stream: a rank's next step may start before the others end this one,
    // which is safe because its partials (which peers read in AllReduce) are rewritten only after
    // its ArgmaxRanks, and that waits for every rank's Argmax, which comes after all of that rank's
    // AllReduce tiles; every rank picks the same token and feeds it to its own next step.
    for (uint32_t done = 0; done < steps;) {
      Compiled& c = compiled(1, false);
      const uint32_t splits = graph_options(1, false, pos_).kv_splits;
      uint32_t n = 1;
      while (done + n < steps && graph_options(1, false, pos_ + n).kv_splits == splits) ++n;
      const std::vector<Compiled*> ranks = c.ranks();
      for (Compiled* r : ranks) r->gpu->set_tokens(&last_argmax_, 1);
      for (uint32_t i = 0; i < n; ++i) launch_step(c, pos_ + i, /*feedback=*/true, i);
      for (Compiled* r : ranks) r->gpu->synchronize();
      std::vector<int32_t> run = c.gpu->read_history(n);
      out.push_back(last_argmax_);
      out.insert(out.end(), run.begin(), run.end() - 1);
      last_argmax_ = run.back();
      pos_ += n;
      done += n;
    }
    return out;
  }
  for (uint32_t i = 0; i < steps; ++i) {
    out.push_back(last_argmax_);
    forward(std::span(&out.back(), 1));
  }
  return out;
}

void Engine::prepare_decode(uint32_t steps) {
  const uint32_t end = std::min(max_ctx_, pos_ + steps);
  for (uint32_t pos = pos_; pos < end; ++pos) compiled_at(1, false, pos);
}

std::vector<uint64_t> Engine::trace_decode_step() {
  if (last_argmax_ < 0) throw Error("trace_decode_step needs a forward() first");
  const int32_t token = last_argmax_;
  return trace_run(std::span(&token, 1));
}

std::vector<uint64_t> Engine::trace_prefill(std::span<const int32_t> tokens) {
  if (tokens.size() > options_.prefill_chunk)
    throw Error("a traced prefill runs one program: at most " + std::to_string(options_.prefill_chunk) +
                " tokens (--prefill-chunk), not " + std::to_string(tokens.size()));
  return trace_run(tokens);
}

std::vector<uint64_t> Engine::trace_run(std::span<const int32_t> tokens) {
  check_tokens(tokens);
  const uint32_t n = static_cast<uint32_t>(tokens.size());
  Compiled& c = compiled(n, false);
  // With tensor parallelism every rank runs the step and rank 0's instructions are stamped (its
  // program is the one compiled() returns).
  std::vector<uint64_t> trace;
  if (c.gpu) {
    c.gpu->enable_trace(true);
    run_gpu(c, tokens.data(), n, /*want_logits=*/false);
    c.gpu->enable_trace(false);
    last_argmax_ = c.gpu->read_token(c.program.logits_rows - 1);
    trace = c.gpu->read_trace();
    trace_phases_ = c.gpu->read_phases();
  } else {
    CpuExecutor& ex = *c.executor;
    ex.enable_trace(true);
    run_cpu(c, tokens.data(), n);
    last_argmax_ = ex.io()[c.program.tokens_out + c.program.logits_rows - 1];
    trace = ex.trace();
    trace_phases_.clear();
    ex.enable_trace(false);
  }
  pos_ += n;
  return trace;
}

std::string Engine::device_name() const {
  if (gpu_model_) return gpu_model_->device().name + (gpus_used_ > 1 ? " x" + std::to_string(gpus_used_) : "");
  return "cpu (" + std::to_string(options_.threads) + " threads)";
}

}  // namespace mk
