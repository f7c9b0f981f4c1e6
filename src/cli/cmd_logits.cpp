// `mk logits`: runs token ids through the engine and writes the logits of every position as a
// .npy file (and the greedy continuation), for comparisons with HF transformers and the reference.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/command.h"
#include "cli/options.h"
#include "cpu/reference.h"
#include "model/error.h"

namespace mk::cli {
namespace {

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::string s = text;
  for (char& ch : s)
    if (ch == ',') ch = ' ';
  std::istringstream is(s);
  std::string tok;
  while (is >> tok) {
    try {
      size_t used = 0;
      long v = std::stol(tok, &used);
      if (used != tok.size() || v < INT32_MIN || v > INT32_MAX) throw std::invalid_argument(tok);
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::exception&) {
      throw Error("--tokens: '" + tok + "' is not a token id");
    }
  }
  return ids;
}

void write_npy(const std::string& path, const std::vector<float>& data, size_t rows, size_t cols) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error(path + ": cannot write");
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                       std::to_string(cols) + "), }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ');
  header += '\n';
  const uint16_t len = static_cast<uint16_t>(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  out.write(reinterpret_cast<const char*>(&len), 2);
  out << header;
  out.write(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float));
}

struct LogitsFlags {
  std::string model, tokens, out, reference_out;
  uint32_t prefill = 0, generate = 0;
  ExecFlags exec;
};

RegisterCommand reg("logits", "Run token ids through the model and write every position's logits (.npy)",
                    [](CLI::App& app) -> std::function<int()> {
  auto f = std::make_shared<LogitsFlags>();
  app.add_option("--model", f->model, "model folder (config.json + safetensors)")->required();
  app.add_option("--tokens", f->tokens, "token ids, separated by commas or spaces")->required();
  app.add_option("--prefill", f->prefill,
                 "how many leading tokens go through prefill; the rest are decoded one by one (default: all)");
  app.add_option("--generate", f->generate,
                 "then continue greedily for this many tokens (the engine's greedy loop), printed as ids");
  app.add_option("--out", f->out, "write the logits [tokens, vocab] here as .npy");
  app.add_option("--reference-out", f->reference_out, "also write the plain reference forward's logits here");
  f->exec.add(app);
  return [f] {
    const std::vector<int32_t> ids = parse_ids(f->tokens);
    if (ids.empty()) throw Error("--tokens: no token ids given");
    auto engine = Engine::open(f->model, f->exec.engine_options());
    const size_t V = engine->config().vocab_size;
    const size_t prefill = f->prefill ? std::min<size_t>(f->prefill, ids.size()) : ids.size();
    std::vector<float> logits = engine->forward(std::span(ids).first(prefill), true);
    for (size_t i = prefill; i < ids.size(); ++i) {
      std::vector<float> row = engine->forward(std::span(ids).subspan(i, 1));
      logits.insert(logits.end(), row.begin(), row.end());
    }
    std::cerr << "logits: " << ids.size() << " tokens on " << engine->device_name();
    if (engine->on_gpu()) std::cerr << ", decode build " << engine->decode_build();
    std::cerr << "\n";
    if (!f->out.empty()) write_npy(f->out, logits, ids.size(), V);
    if (!f->reference_out.empty()) {
      const OpGraph& g = engine->compiled(1, false).graph;
      write_npy(f->reference_out, reference_logits(g, engine->weights(), ids), ids.size(), V);
    }
    if (f->generate) {
      // Engine::decode_greedy: on the GPU a loop on the device, each step's argmax feeding the next.
      std::vector<int32_t> gen = engine->decode_greedy(f->generate - 1);
      gen.push_back(engine->last_argmax());
      std::cout << "generated:";
      for (int32_t t : gen) std::cout << " " << t;
      std::cout << "\n";
    }
    return 0;
  };
});

}  // namespace
}  // namespace mk::cli
