// `mk schedule`: builds the op graph from a config.json alone and prints the scheduler's program
// (every SM's queue) and a summary of its balance, without loading any weights.
#include <cstdio>
#include <fstream>
#include <iostream>

#include "cli/command.h"
#include "cli/options.h"
#include "graph/graph.h"
#include "model/config.h"
#include "model/error.h"
#include "schedule/program.h"

namespace mk::cli {
namespace {

struct ScheduleFlags {
  std::string model;
  uint32_t sms = 132, tokens = 1, ctx = 0, tp = 1, rank = 0;
  std::string tp_comm = "kernel";
  bool summary_only = false, bf16_activations = false;
  GraphFlags graph;
};

RegisterCommand reg("schedule", "Print the per-SM instruction queues the scheduler builds for a model",
                    [](CLI::App& app) -> std::function<int()> {
  auto f = std::make_shared<ScheduleFlags>();
  app.add_option("--model", f->model, "model folder (only its config.json is read) or a config.json")->required();
  app.add_option("--sms", f->sms, "number of SMs to schedule for")->check(CLI::Range(1, 4096));
  app.add_option("--tokens", f->tokens, "tokens per program run (1 = decode, more = prefill)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--ctx", f->ctx, "context length; 0 = the model's, at most 4096");
  app.add_flag("--summary", f->summary_only, "print only the summary");
  f->graph.add(app);
  app.add_flag("--bf16-activations", f->bf16_activations,
               "prefill (16+ tokens) as the GPU runs it: bf16 activations between ops, block norms on their own");
  app.add_option("--tp", f->tp, "tensor parallelism: the program of one of this many ranks (--rank)")
      ->check(CLI::Range(1, 64));
  app.add_option("--rank", f->rank, "which rank's program to print with --tp (0-based)");
  app.add_option("--tp-comm", f->tp_comm,
                 "how the ranks meet: kernel (inside the step) or launches (a launch per all-reduce)")
      ->check(CLI::IsMember({"kernel", "launches", "nccl"}));
  return [f] {
    std::filesystem::path path(f->model);
    ModelConfig c = std::filesystem::is_directory(path) ? load_config(path) : [&] {
      std::ifstream in(path);
      if (!in) throw Error(path.string() + ": cannot open");
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      return parse_config_json(text, path.string());
    }();
    GraphOptions go;
    go.n_tokens = f->tokens;
    go.max_ctx = f->ctx ? f->ctx : static_cast<uint32_t>(std::min(c.max_position_embeddings, 4096));
    f->graph.apply(go);
    go.bf16_activations = f->bf16_activations;
    go.num_sms = f->sms;
    if (f->rank >= f->tp)
      throw Error("--rank " + std::to_string(f->rank) + ": the ranks of --tp " + std::to_string(f->tp) + " are 0 to " +
                  std::to_string(f->tp - 1));
    go.tp_size = f->tp;
    go.tp_rank = f->rank;
    go.tp_launches = f->tp > 1 && f->tp_comm != "kernel";
    const OpGraph g = build_graph(c, go);
    if (f->tp > 1) {
      const TpSplit s = tp_split(c, f->tp, f->rank);
      std::cout << "tensor parallelism: rank " << f->rank << " of " << f->tp << ": query heads " << s.heads
                << ", KV heads " << s.kv_heads << " from " << s.kv_head0 << ", MLP rows " << s.inter
                << ", vocabulary rows " << s.vocab << " from " << s.vocab0 << "\n";
    }
    ScheduleOptions so;
    so.num_sms = f->sms;
    f->graph.apply_schedule(so);
    const Program p = schedule(g, so);
    std::cout << dump_program(p, g, !f->summary_only);
    return 0;
  };
});

}  // namespace
}  // namespace mk::cli
