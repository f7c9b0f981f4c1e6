// Session: everything a generation command opens for a model: tokenizer, chat template, stop
// tokens and the engine, with the default-model lookup, the device choice and a loading bar.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "generate/chat_template.h"
#include "runtime/engine.h"
#include "tokenizer/tokenizer.h"

namespace mk {

struct SessionOptions {
  std::string model;                  // GGUF file or HF folder; "" = find_default_model()
  std::string tokenizer;              // "" = the model's own
  std::string chat_template = "auto"; // auto | chatml | llama3 | mistral | none
  std::string device = "auto";        // auto | cpu | cuda
  EngineOptions engine;
  bool progress = true;               // a loading bar on stderr, when stderr is a terminal
};

struct Session {
  std::filesystem::path model_path;
  std::unique_ptr<Tokenizer> tokenizer;
  ChatTemplate chat;
  std::unique_ptr<Engine> engine;     // null when opened without weights
  std::vector<int32_t> stop_ids;      // empty when opened without weights (needs the config)
  double load_ms = 0;
};

// Checks the device and loads the tokenizer and chat template (cheap, so mistakes show before
// the weights load), then the engine unless `with_weights` is false. Throws mk::Error.
std::unique_ptr<Session> open_session(const SessionOptions& options, bool with_weights = true);

// The device a --device value asks the engine for ("auto" when empty); mk::Error for an unknown
// name. Whether a GPU is usable is the engine's call (Engine::open), which says why not.
std::string resolve_device(const std::string& device);

}  // namespace mk
