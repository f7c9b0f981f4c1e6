// Decoders: token pieces back to text, following HF's decoder chain semantics (ByteLevel,
// Replace, ByteFallback, Fuse, Strip, Metaspace) so decode() output matches HF exactly.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace mk {

// The text of `pieces` (already filtered of skipped tokens). Invalid UTF-8 becomes U+FFFD.
std::string run_decoder(const std::vector<DecoderStep>& steps, std::vector<std::string> pieces);

// For streaming: the raw bytes one piece contributes, before any U+FFFD replacement.
// `index` is the piece's position among the decoded pieces (Metaspace treats index 0 apart).
// Leading-space stripping of the whole text (Strip after Fuse) is left to the caller, through
// leading_strip().
void piece_bytes(const std::vector<DecoderStep>& steps, std::string_view piece, size_t index,
                 std::string& out);
// How many leading copies of `*content` a Strip step removes from the start of the text.
int leading_strip(const std::vector<DecoderStep>& steps, std::string* content);

}  // namespace mk
