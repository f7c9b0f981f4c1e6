// `mk trace`: records one decode step (or, with --prefill, one prefill run) instruction by instruction
// (GPU %globaltimer, or the CPU executor's clock) and writes a Chrome trace (Perfetto), an SVG
// timeline and a text summary.
#include <algorithm>
#include <fstream>
#include <iostream>

#include "cli/command.h"
#include "cli/options.h"
#include "cli/random_prompt.h"
#include "model/error.h"
#include "runtime/trace.h"

namespace mk::cli {
namespace {

struct TraceFlags {
  std::string model, out = "trace.json", svg = "trace.svg";
  uint32_t context = 32;
  uint32_t prefill = 0;  // 0: trace a decode step
  ExecFlags exec;
};

RegisterCommand reg("trace", "Record one decode step (or prefill) per SM and instruction: Chrome trace, SVG, summary",
                    [](CLI::App& app) -> std::function<int()> {
  auto f = std::make_shared<TraceFlags>();
  app.add_option("--model", f->model, "model folder or GGUF file")->required();
  app.add_option("--context", f->context, "tokens in the KV cache before the traced step (random ids)")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--prefill", f->prefill, "trace one prefill run of this many prompt tokens instead of a decode step")
      ->check(CLI::Range(1, 4096));
  app.add_option("--out", f->out, "Chrome trace JSON (open in ui.perfetto.dev or chrome://tracing)");
  app.add_option("--svg", f->svg, "SVG picture of the timeline (one row per SM)");
  f->exec.add(app);
  app.footer("The summary (stdout) gives, per opcode, the SM time spent running and waiting before it.");
  return [f] {
    if (!f->prefill && !f->context) throw Error("--context 0: a decode step needs at least one token before it");
    EngineOptions eo = f->exec.engine_options();
    if (!eo.max_ctx) eo.max_ctx = f->context + std::max(f->prefill, 1u) + 16;
    if (f->prefill > eo.prefill_chunk) eo.prefill_chunk = f->prefill;  // one program run
    auto engine = Engine::open(f->model, eo);
    if (f->context) engine->forward(random_tokens(f->context, engine->config().vocab_size, 1));
    std::vector<uint64_t> stamps;
    if (f->prefill) {
      const std::vector<int32_t> prompt = random_tokens(f->prefill, engine->config().vocab_size, 2);
      const uint32_t start = engine->position();
      engine->trace_prefill(prompt);  // the first run builds and warms the program
      engine->rewind(start);
      stamps = engine->trace_prefill(prompt);
    } else {
      engine->trace_decode_step();
      stamps = engine->trace_decode_step();
    }
    const Program& program = engine->compiled(std::max(f->prefill, 1u), false).program;
    auto write = [](const std::string& path, const std::string& text) {
      std::ofstream out(path);
      out << text;
      if (!out) throw Error(path + ": cannot write");
    };
    write(f->out, chrome_trace_json(program, stamps));
    write(f->svg, trace_svg(program, stamps));
    std::cout << "device: " << engine->device_name() << ", " << program.num_sms << " SMs, context " << f->context;
    if (f->prefill) std::cout << ", prefill of " << f->prefill << " tokens";
    else if (engine->on_gpu()) std::cout << ", decode build " << engine->decode_build();
    std::cout << "\n" << format_trace_summary(summarize_trace(program, stamps));
    if (!engine->trace_phases().empty())
      std::cout << format_phase_summary(summarize_phases(program, stamps, engine->trace_phases()));
    std::cout << "wrote " << f->out << " and " << f->svg << "\n";
    return 0;
  };
});

}  // namespace
}  // namespace mk::cli
