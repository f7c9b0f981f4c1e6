// TokenizerSpec: the neutral description of a tokenizer that both HF tokenizer.json and GGUF
// tokenizer.ggml.* metadata are mapped onto; Tokenizer::from_spec validates and compiles it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mk {

enum class TokenizerModel {
  kByteLevelBpe,      // GPT-2 / Llama 3 / Qwen2 / SmolLM: BPE over bytes shown as printable chars
  kSentencePieceBpe,  // Llama 2 / Mistral: BPE over characters, "▁" for space, <0xXX> fallback
};

// GGUF's tokenizer.ggml.token_type numbering; tokenizer.json files map onto it.
enum class TokenType : int32_t {
  kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6
};

// A token matched on the raw text before the model runs, never split by BPE (HF "added_tokens").
struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = true;       // skipped by decode(skip_special = true)
  bool lstrip = false;       // absorbs the whitespace on its left
  bool rstrip = false;       // absorbs the whitespace on its right
  bool single_word = false;  // matches only when not inside a word
  bool normalized = false;   // matched on the normalized text rather than the raw text
};

struct NormalizerStep {
  enum class Kind { kNfc, kPrepend, kReplace };
  Kind kind;
  std::string text;         // kPrepend: what to prepend; kReplace: the pattern
  std::string replacement;  // kReplace only
};

// The regex splits this project implements by hand, named after the families that use them.
enum class SplitPattern { kGpt2, kLlama3, kQwen2 };

struct PreTokenizerStep {
  enum class Kind { kSplit, kDigits, kByteLevel, kMetaspace };
  Kind kind;
  SplitPattern pattern = SplitPattern::kGpt2;  // kSplit
  bool individual_digits = false;              // kDigits
  bool add_prefix_space = false;               // kByteLevel
  bool use_regex = true;                       // kByteLevel: also split with the GPT-2 pattern
  std::string replacement = "\xE2\x96\x81";    // kMetaspace ("▁")
  enum class Prepend { kAlways, kFirst, kNever } prepend = Prepend::kAlways;  // kMetaspace
  bool split = true;                           // kMetaspace: split before each replacement
};

struct DecoderStep {
  enum class Kind { kByteLevel, kReplace, kByteFallback, kFuse, kStrip, kMetaspace };
  Kind kind;
  std::string text;         // kReplace: pattern; kStrip: the stripped content; kMetaspace: "▁"
  std::string replacement;  // kReplace
  int32_t start = 0;        // kStrip: leading occurrences to strip; kMetaspace: 1 = drop first space
  int32_t stop = 0;         // kStrip: trailing occurrences to strip
};

struct TokenizerSpec {
  std::string source;  // file name, for error messages
  TokenizerModel model = TokenizerModel::kByteLevelBpe;
  std::vector<std::string> vocab;  // id -> piece; "" marks an id no piece uses
  std::vector<TokenType> token_types;  // empty, or one per vocab entry
  // Ranked merges (rank = index); when empty and `scores` is not, merges are derived from the
  // vocabulary: a pair merges into the piece it spells, higher score first (SentencePiece).
  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<float> scores;
  std::vector<AddedToken> added_tokens;
  std::vector<NormalizerStep> normalizer;
  std::vector<PreTokenizerStep> pre_tokenizer;
  std::vector<DecoderStep> decoder;
  int32_t unk_id = -1;
  int32_t bos_id = -1;
  std::vector<int32_t> eos_ids;
  bool add_bos = false;  // encode(add_special = true) prepends bos_id
  bool add_eos = false;  // ... and appends eos_ids[0]
  bool byte_fallback = false;  // SentencePiece: unknown characters become <0xXX> tokens
  bool fuse_unk = false;       // consecutive unknown characters become one unk
  bool ignore_merges = false;  // a word that is itself a token is not merged (Llama 3)
};

}  // namespace mk
