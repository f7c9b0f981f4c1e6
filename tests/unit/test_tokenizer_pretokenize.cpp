// Unit tests of the hand-written pre-tokenizer splits on strings where the GPT-2, Llama 3 and
// Qwen2 regexes behave subtly (backtracking whitespace, case-insensitive contractions, digits).
#include <gtest/gtest.h>

#include "tokenizer/pre_tokenizer.h"

namespace mk::pretok {
namespace {

std::vector<std::string> cut(SplitPattern p, std::string_view text) {
  std::vector<std::string_view> parts;
  split(p, text, parts);
  return {parts.begin(), parts.end()};
}

using V = std::vector<std::string>;
constexpr auto G = SplitPattern::kGpt2;
constexpr auto L = SplitPattern::kLlama3;
constexpr auto Q = SplitPattern::kQwen2;

TEST(TokenizerPreTokenize, Contractions) {
  EXPECT_EQ(cut(G, "I'M here, DON'T go"), (V{"I", "'", "M", " here", ",", " DON", "'", "T", " go"}));
  EXPECT_EQ(cut(L, "I'M here, DON'T go"), (V{"I", "'M", " here", ",", " DON", "'T", " go"}));
  EXPECT_EQ(cut(G, "they're 'RE"), (V{"they", "'re", " '", "RE"}));
  EXPECT_EQ(cut(L, "they're 'RE"), (V{"they", "'re", " '", "RE"}));
  // U+017F (long s) case-folds to s, so Llama 3's (?i:'s) takes it.
  EXPECT_EQ(cut(G, "'s'S'\xC5\xBF"), (V{"'s", "'", "S", "'", "\xC5\xBF"}));
  EXPECT_EQ(cut(L, "'s'S'\xC5\xBF"), (V{"'s", "'S", "'\xC5\xBF"}));
}

TEST(TokenizerPreTokenize, WhitespaceBacktracking) {
  for (SplitPattern p : {G, L, Q}) {
    EXPECT_EQ(cut(p, "  leading"), (V{" ", " leading"}));
    EXPECT_EQ(cut(p, "a   b"), (V{"a", "  ", " b"}));
    EXPECT_EQ(cut(p, "end   "), (V{"end", "   "}));
    EXPECT_EQ(cut(p, "x  \n\n y"), (V{"x", "  \n\n", " y"}));
  }
  EXPECT_EQ(cut(G, "a\r\n\r\nb"), (V{"a", "\r\n\r", "\n", "b"}));
  EXPECT_EQ(cut(L, "a\r\n\r\nb"), (V{"a", "\r\n\r\n", "b"}));
  EXPECT_EQ(cut(G, "foo\n  bar"), (V{"foo", "\n ", " bar"}));
  EXPECT_EQ(cut(L, "foo\n  bar"), (V{"foo", "\n", " ", " bar"}));
  EXPECT_EQ(cut(G, "  \t\n  z"), (V{"  \t\n ", " z"}));
  EXPECT_EQ(cut(L, "  \t\n  z"), (V{"  \t\n", " ", " z"}));
  EXPECT_EQ(cut(G, "!!!\n\nx"), (V{"!!!", "\n", "\n", "x"}));
  EXPECT_EQ(cut(L, "!!!\n\nx"), (V{"!!!\n\n", "x"}));
}

TEST(TokenizerPreTokenize, LetterPrefixes) {
  EXPECT_EQ(cut(G, "tab\tthen"), (V{"tab", "\t", "then"}));
  EXPECT_EQ(cut(L, "tab\tthen"), (V{"tab", "\tthen"}));
  EXPECT_EQ(cut(L, "\tword"), (V{"\tword"}));
  // A combining mark is neither L nor N: it prefixes the next letters in Llama 3.
  EXPECT_EQ(cut(G, "e\xCC\x81t\xC3\xA9"), (V{"e", "\xCC\x81", "t\xC3\xA9"}));
  EXPECT_EQ(cut(L, "e\xCC\x81t\xC3\xA9"), (V{"e", "\xCC\x81t\xC3\xA9"}));
}

TEST(TokenizerPreTokenize, Digits) {
  EXPECT_EQ(cut(G, "12345678"), (V{"12345678"}));
  EXPECT_EQ(cut(L, "12345678"), (V{"123", "456", "78"}));
  EXPECT_EQ(cut(Q, "12345678"), (V{"1", "2", "3", "4", "5", "6", "7", "8"}));
  EXPECT_EQ(cut(G, " 1234"), (V{" 1234"}));
  EXPECT_EQ(cut(L, " 1234"), (V{" ", "123", "4"}));
  EXPECT_EQ(cut(G, "price: $1,000.99!!\n"),
            (V{"price", ":", " $", "1", ",", "000", ".", "99", "!!", "\n"}));
  EXPECT_EQ(cut(L, "price: $1,000.99!!\n"),
            (V{"price", ":", " $", "1", ",", "000", ".", "99", "!!\n"}));
  EXPECT_EQ(cut(Q, "\xE6\x97\xA5\xE6\x9C\xAC" "123"), (V{"\xE6\x97\xA5\xE6\x9C\xAC", "1", "2", "3"}));

  std::vector<std::string_view> parts;
  split_digits("ab12c3\xC2\xBD", true, parts);  // ½ is \p{N} too
  EXPECT_EQ(V(parts.begin(), parts.end()), (V{"ab", "1", "2", "c", "3", "\xC2\xBD"}));
  parts.clear();
  split_digits("ab12c3", false, parts);
  EXPECT_EQ(V(parts.begin(), parts.end()), (V{"ab", "12", "c", "3"}));
}

TEST(TokenizerPreTokenize, PiecesTileTheTextEvenWhenIllFormed) {
  std::string text = "a\xFF\xFE b\xE2\x82 \xF0\x9F\x98\x80\x80 1\xC3";
  for (SplitPattern p : {G, L, Q}) {
    std::string joined;
    for (const auto& s : cut(p, text)) {
      EXPECT_FALSE(s.empty());
      joined += s;
    }
    EXPECT_EQ(joined, text);
  }
  EXPECT_TRUE(cut(G, "").empty());
}

TEST(TokenizerPreTokenize, MetaspaceAndPipelines) {
  PreTokenizerStep m{};
  m.kind = PreTokenizerStep::Kind::kMetaspace;
  m.prepend = PreTokenizerStep::Prepend::kFirst;
  m.split = false;
  std::vector<std::string> out;
  pre_tokenize({m}, "Hello  world", true, out);
  EXPECT_EQ(out, (V{"\xE2\x96\x81Hello\xE2\x96\x81\xE2\x96\x81world"}));
  out.clear();
  pre_tokenize({m}, " x", true, out);  // already starts with the replacement: nothing prepended
  EXPECT_EQ(out, (V{"\xE2\x96\x81x"}));
  out.clear();
  pre_tokenize({m}, "x", false, out);  // not the first split
  EXPECT_EQ(out, (V{"x"}));
  m.split = true;
  m.prepend = PreTokenizerStep::Prepend::kAlways;
  out.clear();
  pre_tokenize({m}, "a  b", false, out);
  EXPECT_EQ(out, (V{"\xE2\x96\x81" "a", "\xE2\x96\x81", "\xE2\x96\x81" "b"}));

  PreTokenizerStep d{};
  d.kind = PreTokenizerStep::Kind::kDigits;
  d.individual_digits = true;
  PreTokenizerStep b{};
  b.kind = PreTokenizerStep::Kind::kByteLevel;
  b.use_regex = true;
  out.clear();
  pre_tokenize({d, b}, "x  12", true, out);
  EXPECT_EQ(out, (V{"x", "  ", "1", "2"}));
}

TEST(TokenizerPreTokenize, RecognisesFamilyRegexes) {
  SplitPattern p;
  EXPECT_TRUE(pattern_from_regex(
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
      &p));
  EXPECT_EQ(p, SplitPattern::kLlama3);
  EXPECT_FALSE(pattern_from_regex(R"(\w+|\s+)", &p));
}

}  // namespace
}  // namespace mk::pretok
