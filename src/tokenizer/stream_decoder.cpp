// StreamDecoder: per-token decoding that holds back the bytes of an unfinished UTF-8 character,
// so a streamed reply never shows half a character (byte-level and <0xXX> tokens split them).
#include "model/error.h"
#include "tokenizer/decoder.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace mk {

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {
  std::string content;
  strip_left_ = leading_strip(tokenizer_.spec().decoder, &content);
  if (content != " ") strip_left_ = 0;  // only space stripping occurs in practice
}

std::string StreamDecoder::push(int32_t id) {
  const Tokenizer::Impl& m = tokenizer_.impl();
  if (id < 0 || id >= tokenizer_.vocab_size())
    throw Error(m.spec.source + ": cannot decode token id " + std::to_string(id));
  if (skip_special_ && m.special[id]) return {};
  size_t mark = pending_.size();
  piece_bytes(m.spec.decoder, m.piece(id), tokens_++, pending_);
  if (at_start_) {
    size_t cut = mark;
    while (strip_left_ > 0 && cut < pending_.size() && pending_[cut] == ' ') ++cut, --strip_left_;
    pending_.erase(mark, cut - mark);
    if (!pending_.empty()) at_start_ = false, strip_left_ = 0;
  }
  size_t n = unicode::complete_prefix_length(pending_);
  std::string out = unicode::to_valid_utf8(std::string_view(pending_).substr(0, n));
  pending_.erase(0, n);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = unicode::to_valid_utf8(pending_);
  pending_.clear();
  at_start_ = true;
  tokens_ = 0;
  std::string content;
  strip_left_ = leading_strip(tokenizer_.spec().decoder, &content);
  if (content != " ") strip_left_ = 0;
  return out;
}

}  // namespace mk
