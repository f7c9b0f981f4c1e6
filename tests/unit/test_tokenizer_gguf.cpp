// Unit tests of Tokenizer::from_gguf on small GGUF files written here: the family pipelines that
// tokenizer.ggml.pre selects, and one-line errors for broken tokenizer metadata.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "model/error.h"
#include "model/gguf/gguf_file.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace mk {
namespace {

// Just enough of a GGUF writer for tokenizer metadata (version 3, no tensors).
class GgufWriter {
 public:
  void str(const std::string& key, const std::string& v) { kv(key, 8); put_str(v); }
  void u32(const std::string& key, uint32_t v) { kv(key, 4); put(v); }
  void boolean(const std::string& key, bool v) { kv(key, 7); put(uint8_t(v)); }
  void strs(const std::string& key, const std::vector<std::string>& v) {
    array(key, 8, v.size());
    for (auto& s : v) put_str(s);
  }
  void i32s(const std::string& key, const std::vector<int32_t>& v) {
    array(key, 5, v.size());
    for (int32_t x : v) put(x);
  }
  void f32s(const std::string& key, const std::vector<float>& v) {
    array(key, 6, v.size());
    for (float x : v) put(x);
  }
  std::filesystem::path write(const std::string& name) const {
    std::string out = "GGUF";
    auto app = [&](auto v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); };
    app(uint32_t(3));
    app(uint64_t(0));
    app(uint64_t(count_));
    out += body_;
    while (out.size() % 32) out.push_back('\0');
    auto path = std::filesystem::temp_directory_path() / ("mk_tok_test_" + name + ".gguf");
    std::ofstream(path, std::ios::binary) << out;
    return path;
  }

 private:
  template <class T>
  void put(T v) { body_.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void put_str(const std::string& s) { put(uint64_t(s.size())); body_ += s; }
  void kv(const std::string& key, uint32_t type) { put_str(key); put(type); ++count_; }
  void array(const std::string& key, uint32_t elem, size_t n) { kv(key, 9); put(elem); put(uint64_t(n)); }
  std::string body_;
  size_t count_ = 0;
};

std::unique_ptr<Tokenizer> load(const GgufWriter& w, const std::string& name) {
  auto path = w.write(name);
  auto g = GgufFile::open(path);
  auto t = Tokenizer::from_gguf(*g);
  std::filesystem::remove(path);
  return t;
}

std::string load_error(const GgufWriter& w, const std::string& name) {
  try {
    load(w, name);
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    return e.what();
  }
  return "(loaded)";
}

// Byte-level vocabulary: 256 bytes, "ab", "<|bos|>", with the merge a+b.
GgufWriter byte_level(const std::string& pre) {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(byte_level::byte_to_piece(uint8_t(b)));
  tokens.push_back("ab");
  tokens.push_back("<|bos|>");
  std::vector<int32_t> types(tokens.size(), 1);
  types.back() = 3;
  GgufWriter w;
  w.str("general.architecture", "llama");
  w.str("tokenizer.ggml.model", "gpt2");
  w.str("tokenizer.ggml.pre", pre);
  w.strs("tokenizer.ggml.tokens", tokens);
  w.i32s("tokenizer.ggml.token_type", types);
  w.strs("tokenizer.ggml.merges", {"a b"});
  w.u32("tokenizer.ggml.bos_token_id", 257);
  w.u32("tokenizer.ggml.eos_token_id", 257);
  return w;
}

TEST(TokenizerGguf, PreTokenizerNamesSelectFamilies) {
  auto gpt2 = load(byte_level("gpt-2"), "gpt2");
  EXPECT_EQ(gpt2->encode("ab"), (std::vector<int32_t>{256}));  // no BOS by default
  EXPECT_EQ(gpt2->encode("<|bos|>ab"), (std::vector<int32_t>{257, 256}));
  EXPECT_TRUE(gpt2->is_special(257));

  auto llama3 = load(byte_level("llama-bpe"), "llama3");
  EXPECT_EQ(llama3->encode("ab")[0], 257);  // Llama 3 adds BOS
  EXPECT_EQ(llama3->encode("ab", false), (std::vector<int32_t>{256}));
  // Llama 3 splits digits in threes, GPT-2 not at all, Qwen2 and SmolLM one by one.
  EXPECT_EQ(llama3->encode("1234", false).size(), 4u);  // "123" has no merge: 3 bytes + 1
  auto qwen2 = load(byte_level("qwen2"), "qwen2");
  // NFC: e + combining acute becomes é, two bytes either way, but composed.
  EXPECT_EQ(qwen2->decode(qwen2->encode("e\xCC\x81")), "\xC3\xA9");

  auto with_flag = byte_level("gpt-2");
  with_flag.boolean("tokenizer.ggml.add_bos_token", true);
  EXPECT_EQ(load(with_flag, "flag")->encode("ab"), (std::vector<int32_t>{257, 256}));
}

TEST(TokenizerGguf, SentencePieceFromScores) {
  const std::string sp = "\xE2\x96\x81";
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", sp, "h", "i", sp + "h", sp + "hi"};
  std::vector<int32_t> types = {2, 3, 3, 1, 1, 1, 1, 1};
  std::vector<float> scores;
  for (size_t i = 0; i < tokens.size(); ++i) scores.push_back(-float(i));
  GgufWriter w;
  w.str("general.architecture", "llama");
  w.str("tokenizer.ggml.model", "llama");
  w.strs("tokenizer.ggml.tokens", tokens);
  w.i32s("tokenizer.ggml.token_type", types);
  w.f32s("tokenizer.ggml.scores", scores);
  w.u32("tokenizer.ggml.bos_token_id", 1);
  w.u32("tokenizer.ggml.eos_token_id", 2);
  w.u32("tokenizer.ggml.unknown_token_id", 0);
  auto t = load(w, "spm");
  EXPECT_EQ(t->encode("hi"), (std::vector<int32_t>{1, 7}));
  EXPECT_EQ(t->encode("hi x", false), (std::vector<int32_t>{7, 3, 0}));  // x is unknown
  EXPECT_EQ(t->decode(std::vector<int32_t>{1, 7, 6}, true), "hi h");
  EXPECT_EQ(t->eos_ids(), (std::vector<int32_t>{2}));
}

TEST(TokenizerGguf, BrokenMetadataIsAnError) {
  GgufWriter w;
  w.str("tokenizer.ggml.model", "gpt2");
  EXPECT_NE(load_error(w, "notokens").find("tokenizer.ggml.tokens"), std::string::npos);

  auto bert = byte_level("gpt-2");
  bert.str("tokenizer.ggml.model", "bert");  // a later duplicate key is itself an error or wins
  std::string msg = load_error(bert, "bert");
  EXPECT_NE(msg, "(loaded)");

  EXPECT_NE(load_error(byte_level("mystery"), "pre").find("tokenizer.ggml.pre \"mystery\""),
            std::string::npos);

  auto types = byte_level("gpt-2");
  types.i32s("tokenizer.ggml.token_type", {1, 2, 3});
  EXPECT_NE(load_error(types, "types"), "(loaded)");

  std::vector<std::string> tokens = {"a", "b"};
  GgufWriter bad;
  bad.str("tokenizer.ggml.model", "gpt2");
  bad.str("tokenizer.ggml.pre", "gpt-2");
  bad.strs("tokenizer.ggml.tokens", tokens);
  bad.i32s("tokenizer.ggml.token_type", {1, 9});
  EXPECT_NE(load_error(bad, "typeval").find("token_type[1] = 9"), std::string::npos);

  GgufWriter range;
  range.str("tokenizer.ggml.model", "gpt2");
  range.strs("tokenizer.ggml.tokens", tokens);
  range.u32("tokenizer.ggml.bos_token_id", 5);
  EXPECT_NE(load_error(range, "bos").find("bos_token_id = 5"), std::string::npos);

  GgufWriter merge;
  merge.str("tokenizer.ggml.model", "gpt2");
  merge.strs("tokenizer.ggml.tokens", tokens);
  merge.strs("tokenizer.ggml.merges", {"a c"});
  EXPECT_NE(load_error(merge, "merge").find("merges[0]"), std::string::npos);
  GgufWriter merge2;
  merge2.str("tokenizer.ggml.model", "gpt2");
  merge2.strs("tokenizer.ggml.tokens", tokens);
  merge2.strs("tokenizer.ggml.merges", {"ab"});
  EXPECT_NE(load_error(merge2, "merge2").find("not \"left right\""), std::string::npos);

  GgufWriter dup;
  dup.str("tokenizer.ggml.model", "gpt2");
  dup.strs("tokenizer.ggml.tokens", {"a", "b", "a"});
  EXPECT_NE(load_error(dup, "dup").find("duplicate token \"a\""), std::string::npos);

  GgufWriter spm;
  spm.str("tokenizer.ggml.model", "llama");
  spm.strs("tokenizer.ggml.tokens", tokens);
  EXPECT_NE(load_error(spm, "spm").find("scores"), std::string::npos);
}

}  // namespace
}  // namespace mk
