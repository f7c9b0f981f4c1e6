// Unit tests of BPE and added tokens through Tokenizer::from_spec on tiny hand-made vocabularies:
// merge order, ignore_merges, score-derived merges, byte fallback, unk fusing, special tokens.
#include <gtest/gtest.h>

#include "model/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace mk {
namespace {

const std::string kSp = "\xE2\x96\x81";  // ▁

// A byte-level spec: the 256 byte pieces, then `extra` pieces, merged by `merges` in order.
TokenizerSpec byte_spec(std::vector<std::string> extra,
                        std::vector<std::pair<std::string, std::string>> merges) {
  TokenizerSpec s;
  s.source = "test";
  s.model = TokenizerModel::kByteLevelBpe;
  for (int b = 0; b < 256; ++b) s.vocab.push_back(byte_level::byte_to_piece(uint8_t(b)));
  for (auto& e : extra) s.vocab.push_back(e);
  s.merges = std::move(merges);
  PreTokenizerStep bl{};
  bl.kind = PreTokenizerStep::Kind::kByteLevel;
  s.pre_tokenizer = {bl};
  s.decoder = {{DecoderStep::Kind::kByteLevel, "", ""}};
  return s;
}

std::vector<std::string> pieces(const Tokenizer& t, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(t.token_text(id));
  return out;
}
using V = std::vector<std::string>;

TEST(TokenizerBpe, MergesByRankNotByPosition) {
  // "abc": (b,c) ranks before (a,b), so the result is a + bc even though ab is leftmost.
  auto t = Tokenizer::from_spec(byte_spec({"bc", "ab"}, {{"b", "c"}, {"a", "b"}}));
  EXPECT_EQ(pieces(*t, t->encode("abc")), (V{"a", "bc"}));
  auto u = Tokenizer::from_spec(byte_spec({"ab", "bc"}, {{"a", "b"}, {"b", "c"}}));
  EXPECT_EQ(pieces(*u, u->encode("abc")), (V{"ab", "c"}));
  // Equal pairs merge left to right: aaa -> aa + a.
  auto w = Tokenizer::from_spec(byte_spec({"aa"}, {{"a", "a"}}));
  EXPECT_EQ(pieces(*w, w->encode("aaa")), (V{"aa", "a"}));
  EXPECT_EQ(pieces(*w, w->encode("aaaa")), (V{"aa", "aa"}));
}

TEST(TokenizerBpe, IgnoreMergesTakesWholeWords) {
  // "abc" is a token, but no merge chain reaches it; ignore_merges (Llama 3) still finds it.
  TokenizerSpec s = byte_spec({"ab", "abc"}, {{"a", "b"}});
  auto plain = Tokenizer::from_spec(s);
  EXPECT_EQ(pieces(*plain, plain->encode("abc")), (V{"ab", "c"}));
  s.ignore_merges = true;
  auto whole = Tokenizer::from_spec(s);
  EXPECT_EQ(pieces(*whole, whole->encode("abc")), (V{"abc"}));
}

TEST(TokenizerBpe, ByteLevelEncodesAnyBytesAndRoundTrips) {
  auto t = Tokenizer::from_spec(byte_spec({"\xC4\xA0" "a"}, {{"\xC4\xA0", "a"}}));
  std::string text = "x a \xFF\xC3(\xF0\x9F\x98\x80 \n\t";
  auto ids = t->encode(text);
  EXPECT_EQ(pieces(*t, ids)[1], "\xC4\xA0" "a");
  // decode() replaces ill-formed bytes like HF; the bytes themselves survive encode.
  EXPECT_EQ(t->decode(ids), "x a \xEF\xBF\xBD\xEF\xBF\xBD(\xF0\x9F\x98\x80 \n\t");
  EXPECT_EQ(t->decode(t->encode("plain text\n")), "plain text\n");
}

// A SentencePiece-style spec: <unk> <s> </s>, optional byte tokens, then `pieces` with scores.
TokenizerSpec spm_spec(std::vector<std::string> words, bool byte_tokens) {
  TokenizerSpec s;
  s.source = "spm";
  s.model = TokenizerModel::kSentencePieceBpe;
  s.vocab = {"<unk>", "<s>", "</s>"};
  s.token_types = {TokenType::kUnknown, TokenType::kControl, TokenType::kControl};
  if (byte_tokens)
    for (int b = 0; b < 256; ++b) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<0x%02X>", b);
      s.vocab.push_back(buf);
      s.token_types.push_back(TokenType::kByte);
    }
  for (auto& w : words) {
    s.vocab.push_back(w);
    s.token_types.push_back(TokenType::kNormal);
  }
  for (size_t i = 0; i < s.vocab.size(); ++i) s.scores.push_back(-float(i));
  s.unk_id = 0;
  s.bos_id = 1;
  s.eos_ids = {2};
  s.add_bos = true;
  s.byte_fallback = byte_tokens;
  s.fuse_unk = true;
  PreTokenizerStep m{};
  m.kind = PreTokenizerStep::Kind::kMetaspace;
  m.prepend = PreTokenizerStep::Prepend::kFirst;
  m.split = false;
  s.pre_tokenizer = {m};
  s.decoder = {{DecoderStep::Kind::kReplace, kSp, " "},
               {DecoderStep::Kind::kByteFallback, "", ""},
               {DecoderStep::Kind::kFuse, "", ""},
               {DecoderStep::Kind::kStrip, " ", "", 1, 0}};
  s.added_tokens = {{0, "<unk>"}, {1, "<s>"}, {2, "</s>"}};
  return s;
}

TEST(TokenizerSentencePiece, ScoresOrderMergesAndBytesFallBack) {
  // Higher score (earlier piece) merges first: "▁h" + "i" beats "h" + "i".
  auto t = Tokenizer::from_spec(spm_spec({kSp, "h", "i", kSp + "h", "hi", kSp + "hi"}, true));
  EXPECT_EQ(pieces(*t, t->encode("hi")), (V{"<s>", kSp + "hi"}));
  // é is not in the vocabulary: its two UTF-8 bytes become byte tokens.
  EXPECT_EQ(pieces(*t, t->encode("h\xC3\xA9", false)), (V{kSp + "h", "<0xC3>", "<0xA9>"}));
  EXPECT_EQ(t->decode(t->encode("h\xC3\xA9 hi")), "<s> h\xC3\xA9 hi");
  EXPECT_EQ(t->decode(t->encode("h\xC3\xA9 hi"), true), "h\xC3\xA9 hi");
  // A lone byte token that is not UTF-8 decodes to U+FFFD, one per byte, as HF's ByteFallback.
  auto bad = std::vector<int32_t>{*t->token_id("<0xC3>"), *t->token_id("h")};
  EXPECT_EQ(t->decode(bad), "\xEF\xBF\xBDh");
}

TEST(TokenizerSentencePiece, UnknownCharactersFuseIntoOneUnk) {
  auto t = Tokenizer::from_spec(spm_spec({kSp, "h", "i"}, false));
  EXPECT_EQ(pieces(*t, t->encode("h\xC3\xA9\xC3\xA9i", false)), (V{kSp, "h", "<unk>", "i"}));
}

TEST(TokenizerAddedTokens, LongestMatchFirstAndNeverMerged) {
  TokenizerSpec s = byte_spec({"<|a|>", "<|ab|>", "ab"}, {{"a", "b"}});
  s.added_tokens = {{256, "<|a|>"}, {257, "<|ab|>"}};
  auto t = Tokenizer::from_spec(s);
  EXPECT_EQ(pieces(*t, t->encode("x<|ab|><|a|>ab<|a")), (V{"x", "<|ab|>", "<|a|>", "ab", "<", "|", "a"}));
  EXPECT_TRUE(t->is_special(256));
  EXPECT_FALSE(t->is_special(258));
  EXPECT_EQ(t->decode(t->encode("q<|a|>r"), true), "qr");
  EXPECT_EQ(t->decode(t->encode("q<|a|>r"), false), "q<|a|>r");
  EXPECT_EQ(*t->token_id("<|ab|>"), 257);
  EXPECT_FALSE(t->token_id("nope").has_value());
}

TEST(TokenizerAddedTokens, StripAndSingleWordFlags) {
  TokenizerSpec s = byte_spec({"<m>", "<r>", "hi"}, {});
  AddedToken m{256, "<m>"};
  m.lstrip = true;
  AddedToken r{257, "<r>"};
  r.rstrip = true;
  AddedToken w{258, "hi", false};
  w.single_word = true;
  s.added_tokens = {m, r, w};
  auto t = Tokenizer::from_spec(s);
  EXPECT_EQ(pieces(*t, t->encode("a  <m>b")), (V{"a", "<m>", "b"}));
  EXPECT_EQ(pieces(*t, t->encode("a<r>  b")), (V{"a", "<r>", "b"}));
  EXPECT_EQ(pieces(*t, t->encode("hi hit chi hi")), (V{"hi", "\xC4\xA0", "h", "i", "t", "\xC4\xA0", "c", "h", "i", "\xC4\xA0", "hi"}));
}

TEST(TokenizerSpecValidation, BadSpecsAreErrors) {
  auto expect_error = [](TokenizerSpec s, const std::string& fragment) {
    try {
      Tokenizer::from_spec(std::move(s));
      ADD_FAILURE() << "no error for " << fragment;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_error(TokenizerSpec{}, "vocabulary is empty");
  TokenizerSpec s = byte_spec({}, {{"a", "zz"}});
  expect_error(s, "merges[0]");
  s = byte_spec({"a"}, {});
  expect_error(s, "duplicate token \"a\"");
  s = byte_spec({}, {});
  s.bos_id = 999;
  expect_error(s, "bos id 999");
  s = byte_spec({}, {});
  s.added_tokens = {{5000, "<x>"}};
  expect_error(s, "outside the vocabulary");
  s = byte_spec({}, {});
  s.token_types = {TokenType::kNormal};
  expect_error(s, "token types for");
  s = byte_spec({}, {});
  s.add_bos = true;
  expect_error(s, "no BOS token");
}

TEST(TokenizerDecode, OutOfRangeIdIsAnError) {
  auto t = Tokenizer::from_spec(byte_spec({}, {}));
  std::vector<int32_t> ids{1, 256};
  EXPECT_THROW(t->decode(ids), Error);
  ids = {-1};
  EXPECT_THROW(t->decode(ids), Error);
  EXPECT_EQ(t->token_text(-5), "");
}

}  // namespace
}  // namespace mk
