// The split patterns as leftmost-first matchers over code points: at each position the
// alternatives are tried in the regex's order and the first that matches wins, with the same
// greedy/backtracking outcome the regex engine would reach.
#include "tokenizer/pre_tokenizer.h"

#include <cstdint>

#include "tokenizer/unicode.h"

namespace mk::pretok {
namespace {

using unicode::CharClass;

struct Chars {
  std::vector<uint32_t> cp;
  std::vector<CharClass> cls;
  std::vector<uint32_t> off;  // byte offset of each character, plus the end
};

void decode(std::string_view text, Chars& c) {
  c.cp.clear();
  c.cls.clear();
  c.off.clear();
  for (size_t i = 0; i < text.size();) {
    unicode::Decoded d = unicode::decode_utf8(text, i);
    c.cp.push_back(d.cp);
    c.cls.push_back(unicode::char_class(d.cp));
    c.off.push_back(uint32_t(i));
    i += d.len;
  }
  c.off.push_back(uint32_t(text.size()));
}

// Case-insensitive ASCII letter test with Unicode simple case folding (U+017F folds to 's').
bool is_ci(uint32_t cp, char lower) {
  if (cp == uint32_t(lower) || cp == uint32_t(lower - 'a' + 'A')) return true;
  return lower == 's' && cp == 0x17F;
}

// 's|'t|'re|'ve|'m|'ll|'d, optionally case-insensitive; returns the match length or 0.
size_t contraction(const Chars& c, size_t i, bool ci) {
  size_t n = c.cp.size();
  if (c.cp[i] != '\'' || i + 1 >= n) return 0;
  auto is = [&](size_t k, char ch) {
    return k < n && (ci ? is_ci(c.cp[k], ch) : c.cp[k] == uint32_t(ch));
  };
  if (is(i + 1, 's') || is(i + 1, 't')) return 2;
  if ((is(i + 1, 'r') || is(i + 1, 'v')) && is(i + 2, 'e')) return 3;
  if (is(i + 1, 'm')) return 2;
  if (is(i + 1, 'l') && is(i + 2, 'l')) return 3;
  if (is(i + 1, 'd')) return 2;
  return 0;
}

size_t run_of(const Chars& c, size_t i, CharClass k) {
  size_t j = i;
  while (j < c.cp.size() && c.cls[j] == k) ++j;
  return j;
}

bool is_other(const Chars& c, size_t i) { return c.cls[i] == CharClass::kOther; }
bool is_crlf(uint32_t cp) { return cp == '\r' || cp == '\n'; }

// \s+(?!\S) then \s+, for a whitespace run starting at i: the run, less its last character when
// a non-space follows (that character then prefixes the next word).
size_t whitespace_tail(const Chars& c, size_t i) {
  size_t k = run_of(c, i, CharClass::kSpace);
  if (k == c.cp.size() || k - i == 1) return k;
  return k - 1;
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
size_t match_gpt2(const Chars& c, size_t i) {
  size_t n = c.cp.size();
  if (size_t len = contraction(c, i, false)) return i + len;
  size_t j = (c.cp[i] == ' ' && i + 1 < n) ? i + 1 : i;
  switch (c.cls[j]) {
    case CharClass::kLetter: return run_of(c, j, CharClass::kLetter);
    case CharClass::kNumber: return run_of(c, j, CharClass::kNumber);
    case CharClass::kOther: return run_of(c, j, CharClass::kOther);
    case CharClass::kSpace: break;
  }
  return whitespace_tail(c, i);
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}| ?[^\s\p{L}\p{N}]+[\r\n]*|
// \s*[\r\n]+|\s+(?!\S)|\s+   with D = 3 (Llama 3) or 1 (Qwen2)
size_t match_llama3(const Chars& c, size_t i, size_t max_digits) {
  size_t n = c.cp.size();
  if (size_t len = contraction(c, i, true)) return i + len;
  CharClass k = c.cls[i];
  if (k == CharClass::kLetter) return run_of(c, i, CharClass::kLetter);
  if (k != CharClass::kNumber && !is_crlf(c.cp[i]) && i + 1 < n &&
      c.cls[i + 1] == CharClass::kLetter)
    return run_of(c, i + 1, CharClass::kLetter);
  if (k == CharClass::kNumber) {
    size_t j = i;
    while (j < n && j - i < max_digits && c.cls[j] == CharClass::kNumber) ++j;
    return j;
  }
  size_t j = (c.cp[i] == ' ' && i + 1 < n) ? i + 1 : i;
  if (is_other(c, j)) {
    j = run_of(c, j, CharClass::kOther);
    while (j < n && is_crlf(c.cp[j])) ++j;
    return j;
  }
  // Here c[i] is whitespace. \s*[\r\n]+ ends right after the run's last CR or LF.
  size_t end = run_of(c, i, CharClass::kSpace);
  for (size_t m = end; m > i; --m)
    if (is_crlf(c.cp[m - 1])) return m;
  return whitespace_tail(c, i);
}

}  // namespace

void split(SplitPattern pattern, std::string_view text, std::vector<std::string_view>& out) {
  thread_local Chars c;
  decode(text, c);
  size_t n = c.cp.size();
  for (size_t i = 0; i < n;) {
    size_t j;
    switch (pattern) {
      case SplitPattern::kGpt2: j = match_gpt2(c, i); break;
      case SplitPattern::kLlama3: j = match_llama3(c, i, 3); break;
      case SplitPattern::kQwen2: j = match_llama3(c, i, 1); break;
      default: j = n;
    }
    if (j <= i) j = i + 1;  // every character matches some alternative; guard all the same
    out.push_back(text.substr(c.off[i], c.off[j] - c.off[i]));
    i = j;
  }
}

void split_digits(std::string_view text, bool individual, std::vector<std::string_view>& out) {
  size_t start = 0;
  bool in_digits = false;
  for (size_t i = 0; i < text.size();) {
    unicode::Decoded d = unicode::decode_utf8(text, i);
    bool digit = unicode::is_number(d.cp);
    if (i > start && (digit != in_digits || (digit && individual))) {
      out.push_back(text.substr(start, i - start));
      start = i;
    }
    in_digits = digit;
    i += d.len;
  }
  if (start < text.size()) out.push_back(text.substr(start));
}

void pre_tokenize(const std::vector<PreTokenizerStep>& steps, std::string_view text, bool first,
                  std::vector<std::string>& out) {
  std::vector<std::string> words;
  if (!text.empty()) words.emplace_back(text);
  std::vector<std::string> next;
  std::vector<std::string_view> parts;
  for (const PreTokenizerStep& step : steps) {
    next.clear();
    for (std::string& w : words) {
      parts.clear();
      std::string owned;  // a rewritten word the parts point into
      switch (step.kind) {
        case PreTokenizerStep::Kind::kSplit:
          split(step.pattern, w, parts);
          break;
        case PreTokenizerStep::Kind::kDigits:
          split_digits(w, step.individual_digits, parts);
          break;
        case PreTokenizerStep::Kind::kByteLevel:
          if (step.add_prefix_space && w[0] != ' ') owned = " " + w;
          else owned = std::move(w);
          if (step.use_regex) split(SplitPattern::kGpt2, owned, parts);
          else parts.push_back(owned);
          break;
        case PreTokenizerStep::Kind::kMetaspace: {
          const std::string& rep = step.replacement;
          bool prepend = step.prepend == PreTokenizerStep::Prepend::kAlways ||
                         (step.prepend == PreTokenizerStep::Prepend::kFirst && first);
          for (char ch : w) {
            if (ch == ' ') owned += rep;
            else owned.push_back(ch);
          }
          if (prepend && owned.compare(0, rep.size(), rep) != 0) owned.insert(0, rep);
          if (!step.split) {
            parts.push_back(owned);
            break;
          }
          // Each replacement character starts a new word (HF's MergedWithNext).
          std::string_view s = owned;
          size_t start = 0;
          for (size_t p = s.find(rep, 1); p != std::string_view::npos;
               p = s.find(rep, p + rep.size())) {
            if (p > start) parts.push_back(s.substr(start, p - start));
            start = p;
          }
          parts.push_back(s.substr(start));
          break;
        }
      }
      for (std::string_view p : parts)
        if (!p.empty()) next.emplace_back(p);
    }
    words.swap(next);
  }
  for (std::string& w : words) out.push_back(std::move(w));
}

bool pattern_from_regex(std::string_view regex, SplitPattern* pattern) {
  static constexpr std::string_view kGpt2 =
      R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
  static constexpr std::string_view kLlama3 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  static constexpr std::string_view kQwen2 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  if (regex == kGpt2) *pattern = SplitPattern::kGpt2;
  else if (regex == kLlama3) *pattern = SplitPattern::kLlama3;
  else if (regex == kQwen2) *pattern = SplitPattern::kQwen2;
  else return false;
  return true;
}

}  // namespace mk::pretok
