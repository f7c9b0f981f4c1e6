// Tokenizer: text <-> token ids for byte-level BPE (GPT-2, Llama 3, Qwen2, SmolLM) and
// SentencePiece-style BPE (Llama 2, Mistral) models, loaded from HF tokenizer.json or GGUF.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace mk {

class GgufFile;

class Tokenizer {
 public:
  // Each loader throws mk::Error naming the file and the field at fault.
  static std::unique_ptr<Tokenizer> from_tokenizer_json(const std::filesystem::path& path);
  static std::unique_ptr<Tokenizer> from_tokenizer_json_text(std::string_view json,
                                                             const std::string& source);
  static std::unique_ptr<Tokenizer> from_gguf(const GgufFile& gguf);
  static std::unique_ptr<Tokenizer> from_spec(TokenizerSpec spec);
  // A tokenizer.json, a directory holding one, or a .gguf file.
  static std::unique_ptr<Tokenizer> from_path(const std::filesystem::path& path);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // add_special: add BOS/EOS as the model's post-processor does. Invalid UTF-8 in `text` is
  // tokenized byte for byte (byte-level models) or through byte fallback / unk.
  // Thread-safe: the word cache is guarded.
  std::vector<int32_t> encode(std::string_view text, bool add_special = true) const;
  // Invalid UTF-8 that the tokens spell comes out as U+FFFD, as HF does. Throws mk::Error for
  // an id outside [0, vocab_size()).
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  std::string token_text(int32_t id) const;  // the stored piece; "" for an unknown id
  std::optional<int32_t> token_id(std::string_view piece) const;
  int32_t vocab_size() const;
  int32_t bos_id() const;                // -1 when none
  std::vector<int32_t> eos_ids() const;  // empty when none
  bool is_special(int32_t id) const;
  const TokenizerSpec& spec() const;

  struct Impl;

 private:
  friend class StreamDecoder;
  const Impl& impl() const { return *impl_; }
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Incremental detokenization for streaming output: the concatenation of everything push() and
// flush() return equals decode() of the same ids whenever that text is valid UTF-8.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = false);
  // Only complete UTF-8: a character whose bytes span several tokens is held back until its last
  // byte arrives; bytes that can never form a character come out as U+FFFD at once.
  std::string push(int32_t id);
  // Whatever is held back, an incomplete character as U+FFFD; the decoder then starts afresh.
  std::string flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  bool at_start_ = true;   // nothing emitted yet: leading-space stripping still applies
  int32_t strip_left_ = 0; // leading spaces the decoder still has to drop
  std::string pending_;    // bytes of an incomplete character
  size_t tokens_ = 0;      // tokens pushed since the start
};

}  // namespace mk
