// GGUF tokenizer.ggml.* metadata -> TokenizerSpec. A GGUF names its pre-tokenizer only by a
// family name (tokenizer.ggml.pre); each known name maps onto that family's HF pipeline.
#include <algorithm>
#include <set>

#include "model/error.h"
#include "model/gguf/gguf_file.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace mk {
namespace {

const std::string kSpace = "\xE2\x96\x81";  // "▁"

bool in_byte_alphabet(const std::string& piece) {
  std::string bytes;
  return byte_level::piece_to_bytes(piece, bytes);
}

PreTokenizerStep byte_level_step(bool use_regex) {
  PreTokenizerStep s{};
  s.kind = PreTokenizerStep::Kind::kByteLevel;
  s.use_regex = use_regex;
  return s;
}

PreTokenizerStep split_step(SplitPattern p) {
  PreTokenizerStep s{};
  s.kind = PreTokenizerStep::Kind::kSplit;
  s.pattern = p;
  return s;
}

// The byte-level families by their tokenizer.ggml.pre names. Returns whether the family's
// HF post-processor adds BOS.
bool set_byte_level_pipeline(const std::string& pre, TokenizerSpec& spec) {
  static const std::set<std::string> llama3 = {"llama3", "llama-v3", "llama-bpe", "falcon3",
                                               "smaug-bpe", "dbrx"};
  static const std::set<std::string> qwen2 = {"qwen2", "deepseek-r1-qwen", "megrez"};
  static const std::set<std::string> digits = {"smollm", "starcoder", "refact"};
  static const std::set<std::string> gpt2 = {"gpt-2", "gpt2", "default"};
  if (llama3.count(pre)) {
    spec.pre_tokenizer = {split_step(SplitPattern::kLlama3), byte_level_step(false)};
    spec.ignore_merges = true;
    return true;
  }
  if (qwen2.count(pre)) {
    spec.normalizer = {{NormalizerStep::Kind::kNfc, "", ""}};
    spec.pre_tokenizer = {split_step(SplitPattern::kQwen2), byte_level_step(false)};
    return false;
  }
  if (digits.count(pre)) {
    PreTokenizerStep d{};
    d.kind = PreTokenizerStep::Kind::kDigits;
    d.individual_digits = true;
    spec.pre_tokenizer = {d, byte_level_step(true)};
    return false;
  }
  if (gpt2.count(pre)) {
    spec.pre_tokenizer = {byte_level_step(true)};
    return false;
  }
  throw Error(spec.source + ": tokenizer.ggml.pre \"" + pre +
              "\" is not a supported pre-tokenizer (gpt-2, llama-bpe, qwen2, smollm and aliases)");
}

void set_sentencepiece_pipeline(const GgufFile& g, TokenizerSpec& spec) {
  bool prefix = g.get_bool_or("tokenizer.ggml.add_space_prefix", true);
  // Phi-3's HF tokenizer prepends "▁" in its normalizer, so every segment between special tokens
  // gets one; Llama 2 / Mistral conversions use Metaspace, which prepends once per input.
  if (g.get_string_or("general.architecture", "") == "phi3") {
    if (prefix) spec.normalizer.push_back({NormalizerStep::Kind::kPrepend, kSpace, ""});
    spec.normalizer.push_back({NormalizerStep::Kind::kReplace, " ", kSpace});
  } else {
    PreTokenizerStep m{};
    m.kind = PreTokenizerStep::Kind::kMetaspace;
    m.replacement = kSpace;
    m.prepend = prefix ? PreTokenizerStep::Prepend::kFirst : PreTokenizerStep::Prepend::kNever;
    m.split = false;
    spec.pre_tokenizer = {m};
  }
  spec.decoder = {{DecoderStep::Kind::kReplace, kSpace, " "},
                  {DecoderStep::Kind::kByteFallback, "", ""},
                  {DecoderStep::Kind::kFuse, "", ""}};
  if (prefix) spec.decoder.push_back({DecoderStep::Kind::kStrip, " ", "", 1, 0});
  spec.byte_fallback = true;
  spec.fuse_unk = true;
}

int32_t optional_id(const GgufFile& g, const char* key, size_t vocab) {
  int64_t id = g.get_int_or(key, -1);
  if (id < -1 || id >= int64_t(vocab))
    throw Error(g.path().string() + ": " + key + " = " + std::to_string(id) +
                " is outside the vocabulary of " + std::to_string(vocab));
  return int32_t(id);
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const GgufFile& g) {
  TokenizerSpec spec;
  spec.source = g.path().string();
  std::string model = g.get_string("tokenizer.ggml.model");
  if (model == "gpt2") spec.model = TokenizerModel::kByteLevelBpe;
  else if (model == "llama") spec.model = TokenizerModel::kSentencePieceBpe;
  else
    throw Error(spec.source + ": tokenizer.ggml.model \"" + model +
                "\" is not supported (gpt2 and llama are)");
  spec.vocab = g.get_string_array("tokenizer.ggml.tokens");
  size_t n = spec.vocab.size();
  if (g.has("tokenizer.ggml.token_type")) {
    std::vector<int64_t> types = g.get_int_array("tokenizer.ggml.token_type");
    if (types.size() != n)
      throw Error(spec.source + ": tokenizer.ggml.token_type has " + std::to_string(types.size()) +
                  " entries for " + std::to_string(n) + " tokens");
    spec.token_types.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      if (types[i] < 1 || types[i] > 6)
        throw Error(spec.source + ": tokenizer.ggml.token_type[" + std::to_string(i) + "] = " +
                    std::to_string(types[i]) + " is not a token type (1..6)");
      spec.token_types.push_back(TokenType(types[i]));
    }
  }
  if (g.has("tokenizer.ggml.merges")) {
    std::vector<std::string> merges = g.get_string_array("tokenizer.ggml.merges");
    spec.merges.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
      const std::string& m = merges[i];
      size_t sp = m.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 >= m.size() ||
          m.find(' ', sp + 1) != std::string::npos)
        throw Error(spec.source + ": tokenizer.ggml.merges[" + std::to_string(i) +
                    "] is not \"left right\": \"" + m + "\"");
      spec.merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
    }
  }
  if (g.has("tokenizer.ggml.scores")) spec.scores = g.get_float_array("tokenizer.ggml.scores");
  if (spec.model == TokenizerModel::kSentencePieceBpe && spec.merges.empty() && spec.scores.empty())
    throw Error(spec.source + ": a llama tokenizer needs tokenizer.ggml.scores or .merges");

  spec.unk_id = optional_id(g, "tokenizer.ggml.unknown_token_id", n);
  spec.bos_id = optional_id(g, "tokenizer.ggml.bos_token_id", n);
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                          "tokenizer.ggml.eom_token_id"}) {
    int32_t id = optional_id(g, key, n);
    if (id >= 0 && std::find(spec.eos_ids.begin(), spec.eos_ids.end(), id) == spec.eos_ids.end())
      spec.eos_ids.push_back(id);
  }

  bool family_adds_bos;
  if (spec.model == TokenizerModel::kByteLevelBpe) {
    family_adds_bos =
        set_byte_level_pipeline(g.get_string_or("tokenizer.ggml.pre", "default"), spec);
    spec.decoder = {{DecoderStep::Kind::kByteLevel, "", ""}};
  } else {
    set_sentencepiece_pipeline(g, spec);
    family_adds_bos = true;
  }
  spec.add_bos = g.get_bool_or("tokenizer.ggml.add_bos_token", family_adds_bos) && spec.bos_id >= 0;
  spec.add_eos = g.get_bool_or("tokenizer.ggml.add_eos_token", false) && !spec.eos_ids.empty();

  // Control and unknown tokens are special added tokens, user-defined ones plain added tokens.
  // In a byte-level vocabulary a "control" token spelled outside the byte alphabet is a
  // mislabel that text can never produce, so it is left out (as HF's GGUF loader does).
  bool byte_level = spec.model == TokenizerModel::kByteLevelBpe;
  for (size_t id = 0; id < spec.token_types.size(); ++id) {
    TokenType t = spec.token_types[id];
    bool special = t == TokenType::kControl || t == TokenType::kUnknown;
    if (!special && t != TokenType::kUserDefined) continue;
    if (spec.vocab[id].empty() || (byte_level && !in_byte_alphabet(spec.vocab[id]))) continue;
    AddedToken a;
    a.id = int32_t(id);
    a.content = spec.vocab[id];
    a.special = special;
    spec.added_tokens.push_back(std::move(a));
  }
  return from_spec(std::move(spec));
}

}  // namespace mk
