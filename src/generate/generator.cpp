// Generator: prefill with KV-cache reuse across calls, the sample/forward loop and its stop
// conditions, streaming through StreamDecoder and StopStrings, and the timing it reports.
#include "generate/generator.h"

#include <algorithm>
#include <chrono>

#include "generate/stop_strings.h"
#include "model/config.h"
#include "model/error.h"
#include "runtime/engine.h"
#include "tokenizer/tokenizer.h"

namespace mk {
namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::kEos: return "end of sequence";
    case StopReason::kStopString: return "stop string";
    case StopReason::kMaxTokens: return "token limit";
    case StopReason::kContextFull: return "context full";
    case StopReason::kInterrupted: return "interrupted";
  }
  return "?";
}

Generator::Generator(Engine& engine, const Tokenizer& tokenizer) : engine_(engine), tokenizer_(tokenizer) {}

void Generator::reset() {
  engine_.reset();
  context_.clear();
}

GenerateResult Generator::generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                                   const TextCallback& on_text) {
  if (prompt.empty()) throw Error("the prompt has no tokens");
  const size_t max_ctx = engine_.max_context();
  if (prompt.size() > max_ctx)
    throw Error("the prompt has " + std::to_string(prompt.size()) + " tokens, more than the context of " +
                std::to_string(max_ctx));
  Sampler sampler(options.sampling);
  GenerateResult r;
  r.prompt_tokens = prompt.size();

  // Keep the longest prefix the cache shares with the prompt (a chat's history, say), but at least
  // one prompt token must run to produce the logits we sample from.
  if (context_.size() != engine_.position()) reset();
  size_t keep = std::mismatch(context_.begin(), context_.end(), prompt.begin(), prompt.end()).first - context_.begin();
  keep = std::min(keep, prompt.size() - 1);
  if (keep < context_.size()) {
    engine_.rewind(static_cast<uint32_t>(keep));
    context_.resize(keep);
  }
  r.reused_tokens = context_.size();

  try {
    const auto t_prefill = std::chrono::steady_clock::now();
    std::vector<float> logits = engine_.forward(prompt.subspan(context_.size()));
    context_.assign(prompt.begin(), prompt.end());
    r.prefill_ms = ms_since(t_prefill);

    const auto t_decode = std::chrono::steady_clock::now();
    StreamDecoder decoder(tokenizer_, options.skip_special);
    StopStrings stops(options.stop_strings);
    auto emit = [&](const std::string& text) {
      if (text.empty()) return;
      r.text += text;
      if (on_text) on_text(text);
    };
    while (options.max_tokens > 0) {  // every way out is a stop condition below
      const int32_t token = options.sampling.plain_greedy() ? engine_.last_argmax()
                                                            : sampler.sample(logits, context_);
      if (std::find(options.stop_ids.begin(), options.stop_ids.end(), token) != options.stop_ids.end()) {
        r.stop = StopReason::kEos;
        r.stop_token = token;
        break;
      }
      r.tokens.push_back(token);
      emit(stops.push(decoder.push(token)));
      if (stops.stopped()) {
        r.stop = StopReason::kStopString;
        break;
      }
      if (r.tokens.size() >= options.max_tokens) {
        r.stop = StopReason::kMaxTokens;
        break;
      }
      if (engine_.position() >= max_ctx) {
        r.stop = StopReason::kContextFull;
        break;
      }
      if (options.cancel && options.cancel->load(std::memory_order_relaxed)) {
        r.stop = StopReason::kInterrupted;
        break;
      }
      logits = engine_.forward(std::span(&token, 1));
      context_.push_back(token);
      ++r.decode_steps;
    }
    if (!stops.stopped()) {
      emit(stops.push(decoder.flush()));
      if (stops.stopped()) r.stop = StopReason::kStopString;
      emit(stops.flush());
    }
    r.decode_ms = ms_since(t_decode);
  } catch (...) {
    reset();  // the engine may have advanced part way: nothing it holds can be trusted
    throw;
  }
  return r;
}

std::vector<int32_t> stop_token_ids(const ModelConfig& config, const Tokenizer& tokenizer,
                                    std::string_view end_of_turn) {
  std::vector<int32_t> ids;
  auto add = [&](int32_t id) {
    if (id >= 0 && id < config.vocab_size && std::find(ids.begin(), ids.end(), id) == ids.end())
      ids.push_back(id);
  };
  for (int id : config.eos_token_ids) add(id);
  for (int32_t id : tokenizer.eos_ids()) add(id);
  if (!end_of_turn.empty())
    if (auto id = tokenizer.token_id(end_of_turn)) add(*id);
  // Instruct models end a reply with their turn marker even when the config names only the
  // document end (or the other way round); ordinary text can never produce these tokens.
  for (const char* marker : {"<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>",
                             "<|end|>", "</s>", "<end_of_turn>"})
    if (auto id = tokenizer.token_id(marker); id && tokenizer.is_special(*id)) add(*id);
  return ids;
}

}  // namespace mk
