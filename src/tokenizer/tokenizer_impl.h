// Tokenizer::Impl: the compiled form of a TokenizerSpec (lookup tables, BPE model, added-token
// matchers), shared by tokenizer.cpp and stream_decoder.cpp; not part of the public API.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/tokenizer.h"

namespace mk {

struct Tokenizer::Impl {
  TokenizerSpec spec;
  PieceMap pieces;          // vocab piece -> id (first id when a piece repeats)
  PieceMap added_by_text;   // added token content -> id
  std::unique_ptr<BpeModel> bpe;
  AddedTokenMatcher raw_matcher;         // tokens matched on the raw text
  AddedTokenMatcher normalized_matcher;  // tokens matched after normalization
  std::vector<uint8_t> special;          // per id
  std::vector<int32_t> added_index;      // per id: index into spec.added_tokens, or -1

  // What decoding shows for `id`: an added token's content, else the vocab piece.
  const std::string& piece(int32_t id) const {
    int32_t a = added_index[id];
    return a >= 0 ? spec.added_tokens[a].content : spec.vocab[id];
  }
};

}  // namespace mk
