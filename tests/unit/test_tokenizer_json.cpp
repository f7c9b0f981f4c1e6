// Unit tests of the tokenizer.json loader: a real (self-built) file loads, and hostile files
// (missing or mistyped fields, unknown pieces, bad ids, duplicates, garbage) give one-line
// mk::Errors naming the field, never a crash.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "model/error.h"
#include "tokenizer/tokenizer.h"

namespace mk {
namespace {

using json = nlohmann::json;

std::string data_file(const std::string& name) {
  std::ifstream in(std::string(MK_TEST_DATA_DIR) + "/tokenizer/" + name, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A minimal valid byte-level tokenizer.json, for the hostile variants to start from.
json minimal() {
  json vocab = json::object();
  const char* pieces[] = {"a", "b", "ab", "\xC4\xA0", "<|end|>"};
  for (int i = 0; i < 5; ++i) vocab[pieces[i]] = i;
  return json{
      {"added_tokens", json::array({{{"id", 4}, {"content", "<|end|>"}, {"special", true},
                                     {"normalized", false}, {"lstrip", false}, {"rstrip", false},
                                     {"single_word", false}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array({"a b"})}}}};
}

std::string load_error(const std::string& text) {
  try {
    Tokenizer::from_tokenizer_json_text(text, "tok.json");
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_EQ(msg.rfind("tok.json", 0), 0u) << msg;
    return msg;
  }
  return "(loaded)";
}

#define EXPECT_LOAD_ERROR(doc, fragment)                                       \
  do {                                                                         \
    std::string msg_ = load_error((doc).dump());                               \
    EXPECT_NE(msg_.find(fragment), std::string::npos) << msg_;                 \
  } while (0)

TEST(TokenizerJson, MinimalLoads) {
  auto t = Tokenizer::from_tokenizer_json_text(minimal().dump(), "tok.json");
  EXPECT_EQ(t->vocab_size(), 5);
  EXPECT_EQ(t->encode("ab<|end|>"), (std::vector<int32_t>{2, 4}));
  EXPECT_TRUE(t->is_special(4));
}

TEST(TokenizerJson, SelfBuiltFamiliesLoad) {
  for (const char* name : {"mini-gpt2.json", "mini-llama3.json", "mini-qwen2.json",
                           "mini-smollm.json", "mini-llama2.json", "mini-llama-metaspace.json"}) {
    std::string text = data_file(name);
    ASSERT_FALSE(text.empty()) << name;
    auto t = Tokenizer::from_tokenizer_json_text(text, name);
    std::string sample = "Hello, world! 123 <s> caf\xC3\xA9 \xF0\x9F\x98\x80";
    EXPECT_FALSE(t->encode(sample).empty()) << name;
  }
  auto l3 = Tokenizer::from_tokenizer_json_text(data_file("mini-llama3.json"), "l3");
  EXPECT_EQ(l3->encode("x")[0], *l3->token_id("<|begin_of_text|>"));
  EXPECT_EQ(l3->bos_id(), *l3->token_id("<|begin_of_text|>"));
}

TEST(TokenizerJson, MissingAndMistypedFields) {
  json d = minimal();
  d.erase("model");
  EXPECT_LOAD_ERROR(d, "missing \"model\"");
  d = minimal();
  d["model"].erase("vocab");
  EXPECT_LOAD_ERROR(d, "missing \"vocab\"");
  d = minimal();
  d["model"]["vocab"] = json::array();
  EXPECT_LOAD_ERROR(d, "model.vocab");
  d = minimal();
  d["model"]["vocab"]["a"] = "zero";
  EXPECT_LOAD_ERROR(d, "expected an integer");
  d = minimal();
  d["model"]["merges"] = "a b";
  EXPECT_LOAD_ERROR(d, "model.merges");
  d = minimal();
  d["added_tokens"][0].erase("content");
  EXPECT_LOAD_ERROR(d, "added_tokens[0]");
  d = minimal();
  d["added_tokens"][0]["special"] = "yes";
  EXPECT_LOAD_ERROR(d, "added_tokens[0].special");
  d = minimal();
  d["pre_tokenizer"] = {{"kind", "ByteLevel"}};
  EXPECT_LOAD_ERROR(d, "missing \"type\"");
  d = minimal();
  d["decoder"] = {{"type", "Strip"}, {"content", " "}, {"start", "one"}, {"stop", 0}};
  EXPECT_LOAD_ERROR(d, "decoder.start");
}

TEST(TokenizerJson, MergesNamingUnknownTokens) {
  json d = minimal();
  d["model"]["merges"] = json::array({"a b", "b zz"});
  EXPECT_LOAD_ERROR(d, "merges[1]");
  d["model"]["merges"] = json::array({"b a"});  // "ba" is not a token
  EXPECT_LOAD_ERROR(d, "merged piece");
  d["model"]["merges"] = json::array({"ab"});
  EXPECT_LOAD_ERROR(d, "expected \"left right\"");
  d["model"]["merges"] = json::array({json::array({"a", "b"})});  // the newer pair form
  EXPECT_EQ(load_error(d.dump()), "(loaded)");
}

TEST(TokenizerJson, IdsOutOfRangeAndDuplicates) {
  json d = minimal();
  d["model"]["vocab"]["b"] = -3;
  EXPECT_LOAD_ERROR(d, "out of range");
  d = minimal();
  d["model"]["vocab"]["b"] = 2000000000;
  EXPECT_LOAD_ERROR(d, "out of range");
  d = minimal();
  d["model"]["vocab"]["b"] = 0;
  EXPECT_LOAD_ERROR(d, "id 0 is used by both");
  d = minimal();
  d["added_tokens"][0]["id"] = 1 << 30;
  EXPECT_LOAD_ERROR(d, "added_tokens[0].id");
  d = minimal();
  d["added_tokens"].push_back(d["added_tokens"][0]);
  d["added_tokens"][1]["content"] = "<|other|>";
  EXPECT_LOAD_ERROR(d, "two added tokens have id 4");
  d = minimal();
  d["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                                 {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
                         {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {77}}}}}}};
  EXPECT_LOAD_ERROR(d, "id 77 is out of range");
}

TEST(TokenizerJson, UnsupportedComponentsAreNamed) {
  json d = minimal();
  d["model"]["type"] = "WordPiece";
  EXPECT_LOAD_ERROR(d, "model \"WordPiece\" is not supported");
  d = minimal();
  d["normalizer"] = {{"type", "NFKC"}};
  EXPECT_LOAD_ERROR(d, "normalizer \"NFKC\"");
  d = minimal();
  d["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers", json::array({{{"type", "Split"},
                                                        {"pattern", {{"Regex", "\\w+"}}},
                                                        {"behavior", "Isolated"},
                                                        {"invert", false}},
                                                       {{"type", "ByteLevel"}}})}};
  EXPECT_LOAD_ERROR(d, "pre_tokenizer.pretokenizers[0].pattern: unrecognised split pattern");
  d = minimal();
  d["pre_tokenizer"] = {{"type", "Whitespace"}};
  EXPECT_LOAD_ERROR(d, "pre-tokenizer \"Whitespace\"");
  d = minimal();
  d["model"]["dropout"] = 0.1;
  EXPECT_LOAD_ERROR(d, "dropout");
}

TEST(TokenizerJson, GarbageIsAnError) {
  EXPECT_NE(load_error("").find("not valid JSON"), std::string::npos);
  EXPECT_NE(load_error("{\"model\": ").find("not valid JSON"), std::string::npos);
  EXPECT_NE(load_error("[1, 2]").find("expected an object"), std::string::npos);
  EXPECT_NE(load_error("\"string\"").find("expected an object"), std::string::npos);
  EXPECT_THROW(Tokenizer::from_tokenizer_json("/nonexistent/tokenizer.json"), Error);
}

// Random damage to a real tokenizer.json: each variant either loads and encodes, or fails
// with mk::Error. Anything else (a crash, another exception) fails the test.
TEST(TokenizerJson, FuzzedFilesNeverCrash) {
  const std::string base = data_file("mini-llama2.json");
  ASSERT_FALSE(base.empty());
  std::mt19937 rng(1234);
  int loaded = 0, rejected = 0;
  for (int iter = 0; iter < 200; ++iter) {
    std::string text = base;
    int edits = 1 + int(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t pos = rng() % text.size();
      switch (rng() % 4) {
        case 0: text[pos] = char(rng() % 256); break;
        case 1: text.erase(pos, 1 + rng() % 16); break;
        case 2: text.insert(pos, std::string(1, "{}[]\",:0-9"[rng() % 10])); break;
        case 3: text.resize(pos); break;
      }
    }
    try {
      auto t = Tokenizer::from_tokenizer_json_text(text, "fuzz.json");
      auto ids = t->encode("Hello <s> world \xF0\x9F\x98\x80 123");
      t->decode(ids);
      ++loaded;
    } catch (const Error&) {
      ++rejected;
    }
  }
  EXPECT_EQ(loaded + rejected, 200);
  EXPECT_GT(rejected, 0);
}

}  // namespace
}  // namespace mk
