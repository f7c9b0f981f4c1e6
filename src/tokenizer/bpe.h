// BpeModel: turns one pre-tokenized word into token ids by ranked pair merges, for both
// byte-level vocabularies and SentencePiece-style ones (characters, <0xXX> fallback, unk).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace mk {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using PieceMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // `pieces` maps each vocab piece to its id and must outlive the model. Throws mk::Error
  // naming spec.source for a merge that names a piece not in the vocabulary.
  BpeModel(const TokenizerSpec& spec, const PieceMap& pieces);

  // Appends the ids of `word`: raw bytes for byte-level models, normalized text otherwise.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  size_t merge_count() const { return merges_.size(); }

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  static uint64_t key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  void add_ranked_merges(const TokenizerSpec& spec);
  void add_score_merges(const TokenizerSpec& spec);
  void initial_symbols(std::string_view word, std::vector<int32_t>& ids) const;
  void apply_merges(std::vector<int32_t>& ids) const;

  const PieceMap& pieces_;
  bool byte_level_;
  bool byte_fallback_;
  bool fuse_unk_;
  bool ignore_merges_;
  int32_t unk_id_;
  int32_t byte_ids_[256];  // byte-level: the byte's piece; SentencePiece: <0xXX>; -1 if absent
  std::unordered_map<uint64_t, Merge> merges_;

  // Words repeat a lot in text; short ones are cached. Guarded so encode() stays thread-safe.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace mk
