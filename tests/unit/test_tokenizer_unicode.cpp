// Unit tests of the tokenizer's Unicode layer: UTF-8 decoding of ill-formed input, character
// classes, NFC, and the stream helper that finds where a character is still incomplete.
#include <gtest/gtest.h>

#include "tokenizer/byte_level.h"
#include "tokenizer/unicode.h"

namespace mk::unicode {
namespace {

TEST(TokenizerUnicode, DecodesWellFormedSequences) {
  std::string s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";  // a é € 😀
  std::vector<uint32_t> cps;
  for (size_t i = 0; i < s.size();) {
    Decoded d = decode_utf8(s, i);
    cps.push_back(d.cp);
    i += d.len;
  }
  EXPECT_EQ(cps, (std::vector<uint32_t>{'a', 0xE9, 0x20AC, 0x1F600}));
}

TEST(TokenizerUnicode, IllFormedSubpartsAreMaximal) {
  // Overlong, surrogate, past U+10FFFF, truncated, stray continuation: one U+FFFD per maximal
  // subpart, as Rust's from_utf8_lossy (and so HF) does.
  EXPECT_EQ(to_valid_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(to_valid_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(to_valid_utf8("\xF4\x90\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(to_valid_utf8("\xE2\x82"), "\xEF\xBF\xBD");
  EXPECT_EQ(to_valid_utf8("\xE2\x82x"), "\xEF\xBF\xBDx");
  EXPECT_EQ(to_valid_utf8("\x80x\xFF"), "\xEF\xBF\xBDx\xEF\xBF\xBD");
  EXPECT_EQ(decode_utf8("\xF0\x9F\x98", 0).len, 3u);
  EXPECT_EQ(decode_utf8("\xF0\x9F\x98", 0).cp, kInvalid);
}

TEST(TokenizerUnicode, CompletePrefixHoldsBackOnlyUnfinishedCharacters) {
  EXPECT_EQ(complete_prefix_length("abc"), 3u);
  EXPECT_EQ(complete_prefix_length("ab\xF0\x9F"), 2u);       // emoji cut after 2 of 4 bytes
  EXPECT_EQ(complete_prefix_length("ab\xF0\x9F\x98\x80"), 6u);
  EXPECT_EQ(complete_prefix_length("ab\xFF"), 3u);           // can never complete: emit as U+FFFD
  EXPECT_EQ(complete_prefix_length("ab\xE2x"), 4u);          // already broken
  EXPECT_EQ(complete_prefix_length("\xC3"), 0u);
}

TEST(TokenizerUnicode, CharacterClasses) {
  EXPECT_TRUE(is_letter('a'));
  EXPECT_TRUE(is_letter(0x65E5));    // 日
  EXPECT_TRUE(is_letter(0x0905));    // Devanagari A
  EXPECT_FALSE(is_letter(0x0301));   // combining acute is Mn, not L
  EXPECT_TRUE(is_number('7'));
  EXPECT_TRUE(is_number(0x00B2));    // superscript two (No)
  EXPECT_TRUE(is_number(0x216B));    // roman numeral twelve (Nl)
  EXPECT_TRUE(is_number(0x0663));    // Arabic-Indic three
  EXPECT_TRUE(is_space(' '));
  EXPECT_TRUE(is_space('\t'));
  EXPECT_TRUE(is_space(0x3000));
  EXPECT_TRUE(is_space(0x85));
  EXPECT_FALSE(is_space(0x200B));    // zero width space is not White_Space
  EXPECT_FALSE(is_space(0x1C));      // nor are the information separators
  EXPECT_EQ(char_class('!'), CharClass::kOther);
  EXPECT_EQ(char_class(0x1F600), CharClass::kOther);
  EXPECT_EQ(char_class(kInvalid), CharClass::kOther);
  EXPECT_EQ(char_class(0x10FFFF), CharClass::kOther);
}

TEST(TokenizerUnicode, NfcComposes) {
  EXPECT_EQ(nfc("e\xCC\x81"), "\xC3\xA9");                      // e + acute -> é
  EXPECT_EQ(nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8"), "\xEA\xB0\x81");  // Hangul jamo -> 각
  // a + dot below (220) + diaeresis (230) given out of order -> canonical order, then composed.
  EXPECT_EQ(nfc("a\xCC\x88\xCC\xA3"), "\xE1\xBA\xA1\xCC\x88");
  EXPECT_EQ(nfc("\xE2\x84\xAB"), "\xC3\x85");                   // Angstrom sign -> Å
  EXPECT_EQ(nfc("plain ascii"), "plain ascii");
  EXPECT_EQ(nfc("\xEF\xAC\x81"), "\xEF\xAC\x81");               // ﬁ is compatibility only
  EXPECT_EQ(nfc("x\xFF\xCC\x81y"), "x\xFF\xCC\x81y");           // ill-formed bytes pass through
  EXPECT_EQ(nfc(""), "");
}

TEST(TokenizerByteLevel, MapsAllBytesBothWays) {
  for (int b = 0; b < 256; ++b) {
    std::string back;
    ASSERT_TRUE(byte_level::piece_to_bytes(byte_level::byte_to_piece(uint8_t(b)), back));
    ASSERT_EQ(back, std::string(1, char(b)));
  }
  EXPECT_EQ(byte_level::byte_to_piece(' '), "\xC4\xA0");  // Ġ
  EXPECT_EQ(byte_level::byte_to_piece('\n'), "\xC4\x8A"); // Ċ
  std::string out = "keep";
  EXPECT_FALSE(byte_level::piece_to_bytes("a b", out));   // ' ' is not a byte character
  EXPECT_EQ(out, "keep");
}

}  // namespace
}  // namespace mk::unicode
