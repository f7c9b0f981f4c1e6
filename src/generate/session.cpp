// Session: model and tokenizer resolution, the template lookup (tokenizer override first), and
// the in-place loading bar fed by EngineOptions::progress.
#include "generate/session.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include "generate/default_model.h"
#include "generate/generator.h"
#include "model/error.h"

namespace mk {
namespace {

// One stderr line rewritten in place ("loading X: dequantizing 63%"), only on a terminal:
// in a log file the carriage returns would pile up into noise.
class LoadingBar {
 public:
  explicit LoadingBar(std::string name) : name_(std::move(name)), tty_(isatty(STDERR_FILENO)) {}
  void update(const std::string& stage, size_t done, size_t total) {
    if (!tty_) return;
    const int pct = total ? int(100.0 * double(done) / double(total)) : 100;
    if (stage == stage_ && pct == pct_) return;
    stage_ = stage, pct_ = pct;
    std::fprintf(stderr, "\rloading %s: %s %d%%\033[K", name_.c_str(), stage.c_str(), pct);
    std::fflush(stderr);
  }
  void done() {
    if (tty_ && pct_ >= 0) std::fprintf(stderr, "\r\033[K"), std::fflush(stderr);
  }

 private:
  std::string name_, stage_;
  int pct_ = -1;
  bool tty_;
};

}  // namespace

std::string resolve_device(const std::string& device) {
  // The engine decides whether a GPU is usable, and says why not when cuda was asked for.
  if (device == "cpu" || device == "cuda") return device;
  if (device.empty() || device == "auto") return "auto";
  throw Error("--device: unknown device '" + device + "' (cpu, cuda, auto)");
}

std::unique_ptr<Session> open_session(const SessionOptions& o, bool with_weights) {
  const std::string device = resolve_device(o.device);
  auto s = std::make_unique<Session>();
  s->model_path = o.model.empty() ? find_default_model() : std::filesystem::path(o.model);
  if (!std::filesystem::exists(s->model_path)) throw Error(s->model_path.string() + ": no such file or folder");
  if (std::filesystem::is_directory(s->model_path) && !std::filesystem::exists(s->model_path / "config.json"))
    throw Error(s->model_path.string() + ": not a model folder (no config.json); --model takes a Hugging Face "
                "folder (config.json + safetensors) or a .gguf file");
  const std::filesystem::path tok_path = o.tokenizer.empty() ? s->model_path : std::filesystem::path(o.tokenizer);
  if (o.tokenizer.empty() && std::filesystem::is_directory(tok_path) &&
      !std::filesystem::exists(tok_path / "tokenizer.json"))
    throw Error(tok_path.string() + ": no tokenizer (looked for " + (tok_path / "tokenizer.json").string() +
                "); name one with --tokenizer (a tokenizer.json, a folder holding one, or a .gguf)");
  try {
    s->tokenizer = Tokenizer::from_path(tok_path);
  } catch (const Error& e) {
    if (!o.tokenizer.empty()) throw;
    throw Error(std::string(e.what()) + " (the model's own tokenizer; --tokenizer names another)");
  }
  std::string tpl = load_chat_template_text(tok_path);
  if (tpl.empty() && tok_path != s->model_path) tpl = load_chat_template_text(s->model_path);
  s->chat = ChatTemplate::select(o.chat_template, tpl, s->tokenizer.get());
  if (!with_weights) return s;

  const auto t0 = std::chrono::steady_clock::now();
  EngineOptions eo = o.engine;
  eo.device = device == "cuda" ? Device::Cuda : device == "cpu" ? Device::Cpu : Device::Auto;
  // Shared: the engine keeps its options (and so this callback) after loading.
  auto bar = std::make_shared<LoadingBar>(s->model_path.filename().string());
  if (o.progress)
    eo.progress = [bar](const std::string& stage, size_t done, size_t total) { bar->update(stage, done, total); };
  try {
    s->engine = Engine::open(s->model_path, eo);
  } catch (...) {
    bar->done();
    throw;
  }
  bar->done();
  s->load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const ModelConfig& c = s->engine->config();
  if (s->tokenizer->vocab_size() > c.vocab_size)
    throw Error(tok_path.string() + ": the tokenizer's " + std::to_string(s->tokenizer->vocab_size()) +
                " tokens do not fit the model's vocabulary of " + std::to_string(c.vocab_size));
  s->stop_ids = stop_token_ids(c, *s->tokenizer, s->chat.end_of_turn());
  return s;
}

}  // namespace mk
