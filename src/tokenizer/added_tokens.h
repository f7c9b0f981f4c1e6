// AddedTokenMatcher: finds added/special tokens in text (leftmost, then longest) so they are cut
// out before normalization and BPE, honouring HF's lstrip / rstrip / single_word flags.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace mk {

struct Segment {
  std::string_view text;  // the text between tokens (token < 0), or the matched span
  int32_t token = -1;     // the added token's id
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  // `patterns[i]` is the text `tokens[i]` is matched as (its content, normalized if it says so).
  void add(const AddedToken& token, std::string pattern);
  bool empty() const { return entries_.empty(); }
  // Appends the segments of `text`; text segments are non-empty.
  void split(std::string_view text, std::vector<Segment>& out) const;

 private:
  struct Entry {
    int32_t id;
    bool lstrip, rstrip, single_word;
  };
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> edges;
    int32_t entry = -1;  // index into entries_ of the pattern ending here
  };
  std::vector<Entry> entries_;
  std::vector<Node> trie_{Node{}};
  bool first_byte_[256] = {};
};

}  // namespace mk
