// Generator: the text-generation loop over an Engine: prefill, sample, decode one token at a time,
// stream text, and stop on EOS, stop strings, the token limit or a full context.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "generate/sampler.h"

namespace mk {

class Engine;
class Tokenizer;
struct ModelConfig;

enum class StopReason { kEos, kStopString, kMaxTokens, kContextFull, kInterrupted };
const char* stop_reason_name(StopReason r);

struct GenerateOptions {
  SamplingParams sampling;
  uint32_t max_tokens = 128;
  std::vector<std::string> stop_strings;  // checked on the decoded text; never shown
  std::vector<int32_t> stop_ids;          // end-of-sequence tokens; never shown
  bool skip_special = false;              // leave other special tokens out of the text
  // When set and true (a SIGINT handler sets it), generation stops after the current token, with
  // the text decoded so far flushed and StopReason::kInterrupted.
  const std::atomic<bool>* cancel = nullptr;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated, stop token excluded (it is neither shown nor run)
  std::string text;             // everything streamed
  StopReason stop = StopReason::kMaxTokens;
  int32_t stop_token = -1;      // kEos: which one
  size_t prompt_tokens = 0;     // the prompt's length
  size_t reused_tokens = 0;     // of which the KV cache already held this many
  double prefill_ms = 0;        // running the rest of the prompt
  size_t decode_steps = 0;      // single-token forwards
  double decode_ms = 0;         // those forwards plus sampling and detokenizing
  double decode_tok_per_s() const { return decode_ms > 0 ? decode_steps * 1000.0 / decode_ms : 0; }
};

// Streamed text: called with each piece as soon as it is final (complete UTF-8, past any stop
// string it could start).
using TextCallback = std::function<void(std::string_view)>;

class Generator {
 public:
  Generator(Engine& engine, const Tokenizer& tokenizer);

  // Generates after `prompt`. When the tokens the engine already holds are a prefix of `prompt`
  // (the previous turns of a chat), only the rest is prefilled; otherwise the engine is reset.
  // Throws mk::Error when the prompt is empty or longer than the context.
  GenerateResult generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                          const TextCallback& on_text = {});

  // The tokens whose keys and values the engine holds, in order.
  const std::vector<int32_t>& context() const { return context_; }
  void reset();

 private:
  Engine& engine_;
  const Tokenizer& tokenizer_;
  std::vector<int32_t> context_;
};

// Every token that ends generation for this model: the config's and the tokenizer's EOS ids, the
// chat template's end-of-turn token (`end_of_turn`, e.g. "<|im_end|>") and the other well-known
// end markers the vocabulary has as special tokens (<|endoftext|>, <|eot_id|>, ...).
std::vector<int32_t> stop_token_ids(const ModelConfig& config, const Tokenizer& tokenizer,
                                    std::string_view end_of_turn);

}  // namespace mk
