// Added-token matching over a byte trie. Text is scanned left to right; at each position the
// longest pattern wins, and scanning resumes after it, as HF's leftmost-longest matcher does.
#include "tokenizer/added_tokens.h"

#include "tokenizer/unicode.h"

namespace mk {
namespace {

// The last / first character of a string, for single_word's word-boundary test.
uint32_t last_char(std::string_view s) {
  size_t i = s.size() - 1;
  while (i > 0 && (uint8_t(s[i]) & 0xC0) == 0x80 && s.size() - i < 4) --i;
  unicode::Decoded d = unicode::decode_utf8(s, i);
  return i + d.len == s.size() ? d.cp : unicode::kInvalid;
}

bool is_word_char(uint32_t cp) {
  return cp == '_' || unicode::is_letter(cp) || unicode::is_number(cp) ||
         (cp != unicode::kInvalid && unicode::combining_class(cp) != 0);
}

size_t leading_space_bytes(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unicode::Decoded d = unicode::decode_utf8(s, i);
    if (!unicode::is_space(d.cp)) break;
    i += d.len;
  }
  return i;
}

size_t trailing_space_start(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t i = end - 1;
    while (i > 0 && (uint8_t(s[i]) & 0xC0) == 0x80 && end - i < 4) --i;
    unicode::Decoded d = unicode::decode_utf8(s, i);
    if (i + d.len != end || !unicode::is_space(d.cp)) break;
    end = i;
  }
  return end;
}

}  // namespace

void AddedTokenMatcher::add(const AddedToken& token, std::string pattern) {
  if (pattern.empty()) return;
  int32_t node = 0;
  for (unsigned char b : pattern) {
    int32_t child = -1;
    for (auto [edge, to] : trie_[node].edges)
      if (edge == b) child = to;
    if (child < 0) {
      child = int32_t(trie_.size());
      trie_[node].edges.push_back({b, child});
      trie_.emplace_back();
    }
    node = child;
  }
  first_byte_[uint8_t(pattern[0])] = true;
  if (trie_[node].entry >= 0) return;  // the same text twice: the first token keeps it
  trie_[node].entry = int32_t(entries_.size());
  entries_.push_back({token.id, token.lstrip, token.rstrip, token.single_word});
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Segment>& out) const {
  size_t emitted = 0;  // text before this offset is already in `out`
  size_t i = 0;
  while (i < text.size()) {
    if (!first_byte_[uint8_t(text[i])]) {
      ++i;
      continue;
    }
    int32_t node = 0, best = -1;
    size_t best_end = 0;
    for (size_t j = i; j < text.size(); ++j) {
      int32_t child = -1;
      for (auto [edge, to] : trie_[node].edges)
        if (edge == uint8_t(text[j])) child = to;
      if (child < 0) break;
      node = child;
      if (trie_[node].entry >= 0) best = trie_[node].entry, best_end = j + 1;
    }
    if (best < 0) {
      ++i;
      continue;
    }
    const Entry& e = entries_[best];
    size_t start = i, stop = best_end;
    if (e.single_word) {
      bool left_ok = start == 0 || !is_word_char(last_char(text.substr(0, start)));
      bool right_ok = stop == text.size() ||
                      !is_word_char(unicode::decode_utf8(text, stop).cp);
      if (!left_ok || !right_ok) {  // HF's matcher resumes after the rejected match
        i = best_end;
        continue;
      }
    }
    if (e.lstrip) start = std::max(emitted, trailing_space_start(text.substr(0, start)));
    if (e.rstrip) stop += leading_space_bytes(text.substr(stop));
    if (start > emitted) out.push_back({text.substr(emitted, start - emitted), -1});
    out.push_back({text.substr(start, stop - start), e.id});
    emitted = stop;
    i = stop;
  }
  if (emitted < text.size()) out.push_back({text.substr(emitted), -1});
}

}  // namespace mk
