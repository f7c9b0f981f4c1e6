// Unit tests of StreamDecoder: no returned piece ever ends inside a UTF-8 character, and the
// pieces add up to decode() for byte-level and SentencePiece (<0xXX>) tokenizers.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace mk {
namespace {

std::unique_ptr<Tokenizer> load(const std::string& name) {
  return Tokenizer::from_tokenizer_json(std::string(MK_TEST_DATA_DIR) + "/tokenizer/" + name);
}

bool valid_utf8(const std::string& s) { return unicode::to_valid_utf8(s) == s; }

const char* kTexts[] = {
    "Hello world",
    "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7 family, "
    "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD thumbs",
    "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE3\x83\x86\xE3\x82\xAD\xE3\x82\xB9\xE3\x83\x88",
    "  leading spaces and caf\xC3\xA9 with e\xCC\x81 combining",
    "\xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7 \xE0\xA4\xA8\xE0\xA4\xAE\xE0\xA4\xB8\xE0\xA5\x8D\xE0\xA4\xA4\xE0\xA5\x87",
    "<s> special </s> text",
    "\xF0\x9F\x8F\xB3\xEF\xB8\x8F\xE2\x80\x8D\xF0\x9F\x8C\x88\n\n\ttabs",
};

void check_stream(const Tokenizer& t, const std::vector<int32_t>& ids) {
  StreamDecoder sd(t);
  std::string all;
  for (int32_t id : ids) {
    std::string piece = sd.push(id);
    ASSERT_TRUE(valid_utf8(piece)) << "partial character after token " << id;
    all += piece;
  }
  std::string rest = sd.flush();
  ASSERT_TRUE(valid_utf8(rest));
  all += rest;
  EXPECT_EQ(all, t.decode(ids));
}

TEST(TokenizerStream, MatchesDecodeOnEveryFamily) {
  for (const char* name : {"mini-gpt2.json", "mini-llama3.json", "mini-qwen2.json",
                           "mini-smollm.json", "mini-llama2.json", "mini-llama-metaspace.json"}) {
    SCOPED_TRACE(name);
    auto t = load(name);
    for (const char* text : kTexts) {
      SCOPED_TRACE(text);
      check_stream(*t, t->encode(text));
    }
  }
}

TEST(TokenizerStream, HoldsBackSplitCharactersByteByByte) {
  auto t = load("mini-llama3.json");
  // One token per byte of a 4-byte emoji: nothing comes out until the last byte.
  std::vector<int32_t> ids;
  for (unsigned char b : std::string("\xF0\x9F\x98\x80")) {
    std::string piece = t->token_text(t->encode(std::string(1, char(b)), false)[0]);
    ids.push_back(*t->token_id(piece));
  }
  StreamDecoder sd(*t);
  EXPECT_EQ(sd.push(ids[0]), "");
  EXPECT_EQ(sd.push(ids[1]), "");
  EXPECT_EQ(sd.push(ids[2]), "");
  EXPECT_EQ(sd.push(ids[3]), "\xF0\x9F\x98\x80");
  // A truncated character at the end comes out of flush() as U+FFFD.
  EXPECT_EQ(sd.push(ids[0]), "");
  EXPECT_EQ(sd.push(ids[1]), "");
  EXPECT_EQ(sd.flush(), "\xEF\xBF\xBD");
  // A byte that can never start a character is replaced at once.
  std::vector<int32_t> ff = t->encode("\xFF", false);
  EXPECT_EQ(sd.push(ff[0]), "\xEF\xBF\xBD");
}

TEST(TokenizerStream, SentencePieceByteTokensAndLeadingSpace) {
  auto t = load("mini-llama2.json");
  std::vector<int32_t> ids = {*t->token_id("<0xE2>"), *t->token_id("<0x82>"), *t->token_id("<0xAC>")};
  StreamDecoder sd(*t);
  EXPECT_EQ(sd.push(ids[0]), "");
  EXPECT_EQ(sd.push(ids[1]), "");
  EXPECT_EQ(sd.push(ids[2]), "\xE2\x82\xAC");  // €
  // The decoder strips the space the normalizer prepended, once, at the very start.
  StreamDecoder sd2(*t);
  std::string out;
  for (int32_t id : t->encode("Hi there", false)) out += sd2.push(id);
  EXPECT_EQ(out + sd2.flush(), "Hi there");
}

TEST(TokenizerStream, RandomTokenSequencesNeverSplitCharacters) {
  auto t = load("mini-qwen2.json");
  std::mt19937 rng(99);
  for (int round = 0; round < 200; ++round) {
    StreamDecoder sd(*t);
    for (int k = 0; k < 40; ++k) {
      std::string piece = sd.push(int32_t(rng() % uint32_t(t->vocab_size())));
      ASSERT_TRUE(valid_utf8(piece));
    }
    ASSERT_TRUE(valid_utf8(sd.flush()));
  }
}

TEST(TokenizerStream, SkipSpecial) {
  auto t = load("mini-qwen2.json");
  auto ids = t->encode("<|im_start|>hi<|im_end|>");
  StreamDecoder sd(*t, /*skip_special=*/true);
  std::string out;
  for (int32_t id : ids) out += sd.push(id);
  EXPECT_EQ(out + sd.flush(), "hi");
}

}  // namespace
}  // namespace mk
