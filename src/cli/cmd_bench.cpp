// `mk bench`: decode speed at several context lengths, time to first token, the device's read
// bandwidth measured in the same run, and the PyTorch baseline on the same weights; writes the
// results as JSON and markdown (bench/results/, the shape of shared/BENCH.md).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "cli/command.h"
#include "cli/options.h"
#include "cli/random_prompt.h"
#include "mk_build_commit.h"
#include "model/config.h"
#include "model/error.h"
#include "runtime/trace.h"
#include "cuda/cuda_backend.h"

namespace mk::cli {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct BenchFlags {
  std::string model, shape, contexts = "32,1024,4096", out_dir = "bench/results", python, commit;
  uint32_t steps = 128, prompt = 512;
  bool no_baseline = false, profile = false, no_tp_compare = false;
  ExecFlags exec;
};

std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) throw Error("cannot run: " + cmd);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  if (pclose(f) != 0) throw Error("failed: " + cmd);
  return out;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Bytes one decode step must read, summed over the ranks with --tp: every weight once (bf16 on the
// GPU, fp32 on the CPU; what ranks replicate, each reads) plus the K and V of `context` positions
// in every layer (each rank its own KV heads). Not the embedding tables, of which a step reads a
// row, unless the token embedding is also the LM head (tied, on one rank).
double bytes_per_token(Engine& e, uint32_t context) {
  const double elem = e.on_gpu() ? 2 : 4;
  double bytes = 0;
  for (const Engine::Compiled* rank : e.compiled(1, false).ranks()) {
    const auto& w = rank->graph.weights;
    const bool embed_is_head = std::none_of(w.begin(), w.end(), [](const WeightDecl& d) { return d.name == "lm_head"; });
    for (const WeightDecl& d : w)
      if (d.kind == WeightDecl::Kind::Loaded && d.name != "pos_embed" && (d.name != "embed" || embed_is_head))
        bytes += d.numel() * elem;
    const ModelDims& dims = rank->graph.dims;
    bytes += 2.0 * dims.n_layers * dims.n_kv_heads * dims.head_dim * context * elem;
  }
  return bytes;
}

std::string markdown(const json& j) {
  std::ostringstream os;
  os << "Device: " << j["device"].get<std::string>() << ", commit " << j["commit"].get<std::string>() << ", "
     << j["date"].get<std::string>() << ", read bandwidth " << j["read_bandwidth_gbps"].get<double>() << " GB/s";
  if (j.contains("peak_bandwidth_gbps")) os << " (the memory's peak: " << j["peak_bandwidth_gbps"].get<double>() << ")";
  if (j.contains("gpus") && j["gpus"].get<int>() > 1)
    os << " per GPU (" << j["gpus"].get<int>() << " GPUs: % of bandwidth is of their sum)";
  os << "\n\n";
  os << "| shape | path | context | ms/token | tokens/s | % of bandwidth | TTFT (ms, prompt) |\n";
  os << "|---|---|---|---|---|---|---|\n";
  char buf[256];
  for (const auto& r : j["rows"]) {
    auto ms = [&](const char* key) { return std::to_string(r[key].get<double>()).substr(0, 7); };
    std::string ttft;  // "ttft_ms (prompt tokens[; GPU events gpu_ttft_ms])"
    if (r.contains("ttft_ms")) {
      ttft = ms("ttft_ms") + " (" + std::to_string(r["prompt_tokens"].get<int>());
      if (r.contains("gpu_ttft_ms")) ttft += "; GPU events " + ms("gpu_ttft_ms");
      ttft += ")";
    }
    if (r.contains("ms_per_token")) {
      std::snprintf(buf, sizeof buf, "| %s | %s | %d | %.3f | %.1f | %s | %s |\n",
                    r["model_shape"].get<std::string>().c_str(), r["path"].get<std::string>().c_str(),
                    r["context"].get<int>(), r["ms_per_token"].get<double>(), r["tokens_per_s"].get<double>(),
                    r.contains("bandwidth_fraction")
                        ? (std::to_string(r["bandwidth_fraction"].get<double>() * 100).substr(0, 4) + "%").c_str()
                        : "",
                    ttft.c_str());
    } else {
      std::snprintf(buf, sizeof buf, "| %s | %s | | | | | %s |\n", r["model_shape"].get<std::string>().c_str(),
                    r["path"].get<std::string>().c_str(), ttft.c_str());
    }
    os << buf;
  }
  return os.str();
}

RegisterCommand reg("bench", "Benchmark decode and prefill against the device's bandwidth and PyTorch",
                    [](CLI::App& app) -> std::function<int()> {
  auto f = std::make_shared<BenchFlags>();
  app.add_option("--model", f->model, "model folder (config.json + safetensors) to benchmark");
  app.add_option("--shape", f->shape,
                 "or a named shape filled with random weights: llama-3.2-1b, llama-3.2-3b, qwen2.5-1.5b, "
                 "smollm2-135m, gpt2, llama-3.1-8b, llama-3.1-70b (made by bench/make_model.py)");
  app.add_option("--contexts", f->contexts, "decode context lengths, comma-separated");
  app.add_option("--steps", f->steps, "decode steps timed per context");
  app.add_option("--prompt", f->prompt, "prompt length for time to first token");
  app.add_option("--out-dir", f->out_dir, "where the JSON and markdown results go");
  app.add_option("--python", f->python, "python with torch + transformers for the baseline (default: python3)");
  app.add_option("--commit", f->commit,
                 "commit id to record (default: $MK_COMMIT, else the commit mk was built from, as mk --version says)");
  app.add_flag("--no-baseline", f->no_baseline, "skip the PyTorch baseline");
  app.add_flag("--no-tp-compare", f->no_tp_compare,
               "with --tp: skip the decode rows of the ranks meeting between launches (NCCL where every rank "
               "has its own GPU, else the exchange kernel), which bench measures after the in-kernel ones");
  app.add_flag("--profile", f->profile, "GPU: print where one decode step's time goes, per opcode");
  f->exec.add(app);
  return [f] {
    if (f->model.empty() == f->shape.empty()) throw Error("give exactly one of --model and --shape");
    const std::string python = !f->python.empty() ? f->python : getenv("MK_PYTHON") ? getenv("MK_PYTHON") : "python3";
    std::string label = f->shape;
    if (!f->shape.empty()) {
      f->model = "/tmp/mk-bench-" + f->shape;
      if (!std::filesystem::exists(f->model + "/config.json")) {
        std::cerr << "bench: writing a random " << f->shape << " model to " << f->model << "\n";
        run_capture(python + " bench/make_model.py --shape " + f->shape + " --out " + f->model + " 1>&2");
      }
    } else {
      label = std::filesystem::path(f->model).filename().string();
    }
    std::vector<uint32_t> contexts;
    {
      std::stringstream ss(f->contexts);
      std::string c;
      while (std::getline(ss, c, ',')) contexts.push_back(static_cast<uint32_t>(std::stoul(c)));
    }
    // A model with learned positions (GPT-2: 1024) cannot go past them: drop the contexts it
    // cannot hold, and say so, rather than fail the whole run.
    if (std::filesystem::is_directory(f->model)) {
      const ModelConfig config = load_config(f->model);
      if (config.learned_pos) {
        const uint32_t limit = static_cast<uint32_t>(config.max_position_embeddings);
        std::erase_if(contexts, [&](uint32_t c) {
          const bool drop = std::max(c, f->prompt) + f->steps + 16 > limit;
          if (drop) std::cerr << "bench: skipping context " << c << ": the model has " << limit << " positions\n";
          return drop;
        });
        if (contexts.empty()) throw Error("every context is past the model's " + std::to_string(limit) + " positions");
      }
    }
    EngineOptions eo = f->exec.engine_options();
    // The first rows are the generic build's unless --kernel specialized: auto would pick the
    // specialized build for the model it fits, whose rows follow below for the comparison.
    if (eo.gpu_kernel == cuda::KernelBuild::Auto) eo.gpu_kernel = cuda::KernelBuild::Generic;
    const uint32_t longest = *std::max_element(contexts.begin(), contexts.end());
    eo.max_ctx = std::max(longest, f->prompt) + f->steps + 16;
    eo.prefill_chunk = std::max(eo.prefill_chunk, f->prompt);
    std::cerr << "bench: loading " << f->model << "\n";
    auto engine = Engine::open(f->model, eo);
    const int32_t vocab = engine->config().vocab_size;

    json j;
    j["device"] = engine->device_name();
    // The build's commit rather than the current directory's git: the binary may run on a copy of the
    // tree (the GPU machine's) whose git says something else.
    std::string commit = f->commit;
    if (commit.empty() && getenv("MK_COMMIT")) commit = getenv("MK_COMMIT");
    if (commit.empty()) commit = MK_BUILD_COMMIT;
    j["commit"] = commit;
    char date[32];
    const std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
    j["date"] = date;
    double bandwidth = 0;  // one GPU's, measured on the first
    if (engine->on_gpu()) bandwidth = cuda::measure_read_bandwidth_gbps();
    j["read_bandwidth_gbps"] = bandwidth;
    // The peak by the memory's clock and bus width (cuda::DeviceInfo), which --pipe-inflight auto reads.
    if (engine->on_gpu()) j["peak_bandwidth_gbps"] = cuda::query_device(0).peak_bandwidth_gbps;
    const uint32_t tp = eo.tp;
    if (tp > 1) j["tp"] = tp;
    if (engine->gpus_used() > 1) j["gpus"] = engine->gpus_used();
    // With --tp over several GPUs the step's bytes are read by all of them: its share of their sum.
    const double aggregate_bandwidth = bandwidth * std::max(1u, engine->gpus_used());
    json rows = json::array();
    std::string suffix;
    if (f->exec.graph.no_fuse_norms) suffix += "_unfused";
    if (f->exec.graph.no_data_waits) suffix += "_counter_waits";
    if (f->exec.weight_pipe != "auto" && engine->on_gpu()) suffix += "_pipe_" + f->exec.weight_pipe;
    if (f->exec.pipe_pages && engine->on_gpu()) suffix += "_pages_" + std::to_string(f->exec.pipe_pages);
    if (tp > 1) suffix += "_tp" + std::to_string(tp);
    if (tp > 1 && eo.tp_comm != TpComm::Kernel) suffix += std::string("_") + tp_comm_name(eo.tp_comm);
    const std::string path =
        (!engine->on_gpu() ? "cpu" : f->exec.kernel == "specialized" ? "specialized" : "generic") + suffix;

    // ms/token of greedy decode at every context (a prompt of that length first).
    auto decode_rows = [&](Engine& e, const std::string& row_path) {
      for (uint32_t ctx : contexts) {
        e.reset();
        const auto prompt = random_tokens(ctx, vocab, ctx);
        e.forward(prompt);
        e.decode_greedy(4);  // warm-up
        e.prepare_decode(f->steps);  // a run crossing a KV-split change would otherwise time its scheduling
        const auto t0 = Clock::now();
        e.decode_greedy(f->steps);
        const double ms = seconds_since(t0) * 1000 / f->steps;
        const double bytes = bytes_per_token(e, ctx + 4 + f->steps / 2);
        json r = {{"model_shape", label}, {"path", row_path}, {"context", ctx}, {"ms_per_token", ms},
                  {"tokens_per_s", 1000 / ms}, {"bytes_per_token", bytes}};
        if (bandwidth > 0) r["bandwidth_fraction"] = bytes / (ms / 1000) / (aggregate_bandwidth * 1e9);
        std::string pipe;  // how decode streamed its weights (auto's choice among them), rank 0's
        if (const cuda::DeviceProgram* gpu = e.compiled(1, false).gpu.get()) {
          r["pipe_pages"] = gpu->pipe_pages();
          r["pipe_inflight"] = gpu->pipe_inflight();
          const std::string cap =
              gpu->pipe_inflight() ? std::to_string(gpu->pipe_inflight()) + " copies in flight" : "no cap";
          pipe = gpu->pipe_pages() ? " (weight pipe: " + std::to_string(gpu->pipe_pages()) + " pages, " + cap + ")"
                                   : " (weight pipe off)";
        }
        rows.push_back(r);
        std::cerr << "bench: " << row_path << ", context " << ctx << ": " << ms << " ms/token" << pipe << "\n";
      }
    };
    decode_rows(*engine, path);
    // Where a specialized decode build exists for this model (cuda/spec.h), the same rows from it in
    // the same run, so that the generic path's distance to it is a ratio of two measurements.
    if (engine->on_gpu() && f->exec.kernel != "specialized" &&
        cuda::specialized_build(engine->compiled(1, false).program.dims)) {
      EngineOptions so = eo;
      so.gpu_kernel = cuda::KernelBuild::Specialized;
      try {
        auto special = Engine::open(f->model, so);
        decode_rows(*special, "specialized" + suffix);
      } catch (const Error& e) {  // the generic rows still stand
        std::cerr << "bench: the specialized build failed (" << e.what() << "); no specialized rows\n";
      }
    }
    {
      // The same decode with a host round trip per token (logits copied back, token sent down).
      engine->reset();
      engine->forward(random_tokens(contexts.front(), vocab, 1));
      int32_t next = engine->last_argmax();
      engine->forward(std::span(&next, 1));
      const uint32_t n = std::min<uint32_t>(f->steps, 64);
      const auto t0 = Clock::now();
      for (uint32_t i = 0; i < n; ++i) {
        next = engine->last_argmax();
        engine->forward(std::span(&next, 1));
      }
      const double ms = seconds_since(t0) * 1000 / n;
      rows.push_back({{"model_shape", label}, {"path", path + "_host_loop"}, {"context", contexts.front()},
                      {"ms_per_token", ms}, {"tokens_per_s", 1000 / ms}});
    }
    if (f->profile && engine->on_gpu()) {  // with --tp, rank 0's step
      engine->reset();
      engine->forward(random_tokens(contexts.front(), vocab, 3));
      engine->trace_decode_step();  // warm
      const std::vector<uint64_t> stamps = engine->trace_decode_step();
      std::cout << format_trace_summary(summarize_trace(engine->compiled(1, false).program, stamps));
    }
    {
      // ttft_ms: forward() on the host clock (the tokens up, the run, the logits back); on the GPU
      // also gpu_ttft_ms, the program's run timed by CUDA events on its stream, as the PyTorch
      // baseline times its prefill graph, and host_phases_ms, where the median run's host time went.
      struct Run {
        double ttft, gpu;
        Engine::HostPhases phases;
      };
      std::vector<Run> runs;
      const auto prompt = random_tokens(f->prompt, vocab, 7);
      engine->time_gpu_runs(engine->on_gpu());
      for (int rep = 0; rep < 4; ++rep) {
        engine->reset();
        const auto t0 = Clock::now();
        engine->forward(prompt);
        if (rep)  // the first run builds the program
          runs.push_back({seconds_since(t0) * 1000, engine->last_forward_gpu_ms(), engine->last_forward_host_phases()});
      }
      engine->time_gpu_runs(false);
      std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) { return a.ttft < b.ttft; });
      const Run& median = runs[runs.size() / 2];
      std::vector<double> gpu;
      for (const Run& run : runs) gpu.push_back(run.gpu);
      std::sort(gpu.begin(), gpu.end());
      json r = {{"model_shape", label}, {"path", path}, {"context", 0}, {"prompt_tokens", f->prompt},
                {"ttft_ms", median.ttft}};
      if (engine->on_gpu()) {
        r["gpu_ttft_ms"] = gpu[gpu.size() / 2];
        const Engine::HostPhases& h = median.phases;
        r["host_phases_ms"] = {{"upload", h.upload_ms}, {"launch", h.launch_ms}, {"wait", h.wait_ms},
                               {"read_back", h.read_ms}};
        std::fprintf(stderr, "bench: %s TTFT %.3f ms on the host: upload %.3f, launch %.3f, wait %.3f (GPU events "
                     "%.3f), read back %.3f\n",
                     path.c_str(), median.ttft, h.upload_ms, h.launch_ms, h.wait_ms, median.gpu, h.read_ms);
      }
      rows.push_back(r);
    }
    const bool on_gpu = engine->on_gpu(), gpu_per_rank = engine->gpus_used() == tp;
    engine.reset();
    // The in-kernel all-reduce against the ranks meeting between launches, in the same run: NCCL
    // where it can run (a GPU per rank), else the exchange kernel (the CPU: the engine's sums).
    // After the main engine is gone, so that the two never hold the model at once.
    if (tp > 1 && eo.tp_comm == TpComm::Kernel && !f->no_tp_compare) {
      for (const TpComm comm : {TpComm::Nccl, TpComm::Launches}) {
        if (comm == TpComm::Nccl && !(on_gpu && gpu_per_rank)) continue;
        EngineOptions co = eo;
        co.tp_comm = comm;
        try {
          auto other = Engine::open(f->model, co);
          decode_rows(*other, path + "_" + tp_comm_name(comm));
          break;
        } catch (const Error& e) {
          std::cerr << "bench: --tp-comm " << tp_comm_name(comm) << " failed (" << e.what() << ")\n";
        }
      }
    }
    if (!f->no_baseline) {
      std::cerr << "bench: PyTorch baseline\n";
      std::string out;
      try {
        out = run_capture(python + " bench/torch_baseline.py --model " + f->model + " --contexts " +
                                          f->contexts + " --steps " + std::to_string(f->steps) + " --prompt " +
                                          std::to_string(f->prompt));
      } catch (const Error& e) {
        std::cerr << "bench: the PyTorch baseline failed (" << e.what() << "); writing our rows only\n";
      }
      const size_t at = out.rfind("{\"rows\"");
      const json base = at == std::string::npos ? json{{"rows", json::array()}} : json::parse(out.substr(at));
      for (json r : base["rows"]) {
        r["model_shape"] = label;
        if (r.contains("ms_per_token") && bandwidth > 0 && tp == 1) {
          // The same bytes as ours at that context: both must read the weights and the KV cache.
          // (Not with --tp: the baseline runs the whole model on one GPU.)
          for (const auto& mine : rows)
            if (mine.contains("bytes_per_token") && mine["context"] == r["context"])
              r["bandwidth_fraction"] = mine["bytes_per_token"].get<double>() / (r["ms_per_token"].get<double>() / 1000) /
                                        (bandwidth * 1e9);
        }
        rows.push_back(r);
      }
    }
    j["rows"] = rows;
    std::string device = j["device"].get<std::string>();
    for (char& c : device)
      if (!isalnum(static_cast<unsigned char>(c))) c = '-';
    std::filesystem::create_directories(f->out_dir);
    // The commit in the name keeps every run of a day: the files are the performance history.
    const std::string base = f->out_dir + "/" + device + "-" + label + "-" + date + "-" + commit;
    std::ofstream(base + ".json") << j.dump(2) << "\n";
    const std::string md = markdown(j);
    std::ofstream(base + ".md") << md;
    std::cout << md << "\nwrote " << base << ".json and .md\n";
    return 0;
  };
});

}  // namespace
}  // namespace mk::cli
