// Tests of GgufFile: metadata getters on a file built byte by byte, and hostile files (every
// truncation, bogus counts, lengths, shapes, offsets) that must fail with one clean line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "model/error.h"
#include "model/gguf/gguf_file.h"

namespace mk {
namespace {

namespace fs = std::filesystem;
using VT = GgufValueType;

// Little-endian byte encoders for building GGUF files in memory.
std::string u32(uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string u64(uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }
std::string str(std::string_view s) { return u64(s.size()) + std::string(s); }
std::string f32(float v) { return std::string(reinterpret_cast<const char*>(&v), 4); }

struct Kv {
  std::string key;
  uint32_t type;
  std::string value;  // encoded value bytes
};
struct Ti {
  std::string name;
  std::vector<uint64_t> ne;
  uint32_t type;
  uint64_t offset;
};

// A valid file by default; each test breaks one thing.
struct Spec {
  std::string magic = "GGUF";
  uint32_t version = 3;
  std::vector<Kv> kvs = {
      {"general.architecture", 8, str("test")},
      {"test.u32", 4, u32(7)},
      {"test.f32", 6, f32(0.5f)},
      {"test.bool", 7, std::string(1, '\1')},
      {"test.i64", 11, u64(static_cast<uint64_t>(-3))},
      {"test.u64_big", 10, u64(~uint64_t{0})},
      {"test.strings", 9, u32(8) + u64(3) + str("a") + str("") + str("bc")},
      {"test.i32s", 9, u32(5) + u64(2) + u32(static_cast<uint32_t>(-1)) + u32(4)},
      {"test.nested", 9, u32(9) + u64(2) + u32(0) + u64(1) + "x" + u32(0) + u64(0)},
  };
  std::vector<Ti> tensors = {
      {"a", {4, 2}, 0, 0},   // F32, 32 bytes
      {"b", {32}, 8, 32},    // Q8_0, 34 bytes
  };
  uint64_t alignment = 32;  // padding used before the data blob
  std::string data = std::string(66, '\0');
  int64_t tensor_count = -1, kv_count = -1;  // overrides

  std::string bytes() const {
    std::string b = magic + u32(version);
    b += u64(tensor_count >= 0 ? tensor_count : tensors.size());
    b += u64(kv_count >= 0 ? kv_count : kvs.size());
    for (const Kv& kv : kvs) b += str(kv.key) + u32(kv.type) + kv.value;
    for (const Ti& t : tensors) {
      b += str(t.name) + u32(static_cast<uint32_t>(t.ne.size()));
      for (uint64_t n : t.ne) b += u64(n);
      b += u32(t.type) + u64(t.offset);
    }
    b.resize((b.size() + alignment - 1) / alignment * alignment, '\0');
    return b + data;
  }
};

class GgufFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mk_gguf_file_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& bytes, const std::string& name = "t.gguf") {
    fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p;
  }

  // Opening must throw one mk::Error line "<path>: ..." containing `want`.
  void expect_error(const std::string& bytes, const std::string& want) {
    fs::path p = write(bytes);
    try {
      GgufFile::open(p);
      ADD_FAILURE() << "no error, wanted: " << want;
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(want), std::string::npos) << msg;
      EXPECT_EQ(msg.rfind(p.string() + ": ", 0), 0u) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }

  fs::path dir_;
};

TEST_F(GgufFileTest, ParsesMetadataAndTensors) {
  Spec s;
  for (size_t i = 0; i < 32; ++i) s.data[i] = static_cast<char>(i);
  auto f = GgufFile::open(write(s.bytes()));
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->keys().size(), s.kvs.size());
  EXPECT_EQ(f->keys()[1], "test.u32");
  EXPECT_EQ(f->get_string("general.architecture"), "test");
  EXPECT_EQ(f->get_int("test.u32"), 7);
  EXPECT_EQ(f->get_int("test.bool"), 1);
  EXPECT_EQ(f->get_int("test.i64"), -3);
  EXPECT_DOUBLE_EQ(f->get_float("test.f32"), 0.5);
  EXPECT_DOUBLE_EQ(f->get_float("test.u32"), 7.0);
  EXPECT_TRUE(f->get_bool("test.bool"));
  EXPECT_EQ(f->get_string_array("test.strings"), (std::vector<std::string>{"a", "", "bc"}));
  EXPECT_EQ(f->get_int_array("test.i32s"), (std::vector<int64_t>{-1, 4}));
  EXPECT_EQ(f->get_float_array("test.i32s"), (std::vector<float>{-1.0f, 4.0f}));
  EXPECT_EQ(f->type("test.nested"), VT::ARRAY);
  EXPECT_EQ(f->array_type("test.nested"), VT::ARRAY);
  EXPECT_EQ(f->array_size("test.strings"), 3u);
  EXPECT_EQ(f->get_int_or("absent", 42), 42);
  EXPECT_EQ(f->get_string_or("absent", "d"), "d");
  EXPECT_DOUBLE_EQ(f->get_float_or("absent", 1.5), 1.5);
  EXPECT_FALSE(f->get_bool_or("absent", false));
  EXPECT_EQ(f->get_int_or("test.u32", 42), 7);

  ASSERT_EQ(f->tensors().size(), 2u);
  const GgufTensorInfo* a = f->find_tensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->type, GgmlType::F32);
  EXPECT_EQ(a->ne, (std::vector<uint64_t>{4, 2}));
  EXPECT_EQ(a->nbytes, 32u);
  EXPECT_EQ(static_cast<int>(a->data[5]), 5);
  const GgufTensorInfo* b = f->find_tensor("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->type, GgmlType::Q8_0);
  EXPECT_EQ(b->nbytes, 34u);
  EXPECT_EQ(b->data, a->data + 32);
  EXPECT_EQ(f->find_tensor("c"), nullptr);
}

TEST_F(GgufFileTest, GetterErrorsNameTheKey) {
  auto f = GgufFile::open(write(Spec().bytes()));
  auto msg = [](auto&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(msg([&] { f->get_int("llama.block_count"); }).find("missing key 'llama.block_count'"),
            std::string::npos);
  EXPECT_NE(msg([&] { f->get_int("general.architecture"); })
                .find("key 'general.architecture' is string, expected integer"),
            std::string::npos);
  EXPECT_NE(msg([&] { f->get_string("test.u32"); }).find("is u32, expected string"), std::string::npos);
  EXPECT_NE(msg([&] { f->get_bool("test.u32"); }).find("expected bool"), std::string::npos);
  EXPECT_NE(msg([&] { f->get_int("test.u64_big"); }).find("does not fit in int64"), std::string::npos);
  EXPECT_NE(msg([&] { f->get_float("test.strings"); }).find("is array of string, expected number"),
            std::string::npos);
  EXPECT_NE(msg([&] { f->get_int_array("test.strings"); }).find("expected array of integer"),
            std::string::npos);
  EXPECT_NE(msg([&] { f->get_string_array("test.u32"); }).find("expected array of string"),
            std::string::npos);
  EXPECT_NE(msg([&] { f->get_int_or("test.f32", 1); }).find("expected integer"), std::string::npos);
}

TEST_F(GgufFileTest, Version2AndCustomAlignment) {
  Spec s;
  s.version = 2;
  s.kvs.push_back({"general.alignment", 4, u32(64)});
  s.alignment = 64;
  s.tensors[1].offset = 64;
  s.data.resize(64 + 34);
  auto f = GgufFile::open(write(s.bytes()));
  EXPECT_EQ(f->version(), 2u);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->find_tensor("b")->offset, 64u);
}

TEST_F(GgufFileTest, RejectsBadHeaders) {
  expect_error("", "bad magic");
  Spec s;
  s.magic = "GGUX";
  expect_error(s.bytes(), "bad magic");
  s = Spec();
  s.version = 1;
  expect_error(s.bytes(), "unsupported GGUF version 1");
  s.version = 99;
  expect_error(s.bytes(), "unsupported GGUF version 99");
  s.version = 0x03000000;
  expect_error(s.bytes(), "big-endian");
  s = Spec();
  s.tensor_count = int64_t{1} << 40;
  expect_error(s.bytes(), "tensor count 1099511627776 is more than the file can hold");
  s.tensor_count = 1000;  // under the hard cap but more than the bytes could describe
  expect_error(s.bytes(), "tensor count 1000");
  s = Spec();
  s.kv_count = int64_t{1} << 40;
  expect_error(s.bytes(), "kv count");
  s.kv_count = 100;
  expect_error(s.bytes(), "kv count 100");
}

TEST_F(GgufFileTest, RejectsBadKeyValues) {
  Spec s;
  s.kvs[1].key = "";
  expect_error(s.bytes(), "empty key");
  s = Spec();
  s.kvs[2].key = "test.u32";
  expect_error(s.bytes(), "duplicate key 'test.u32'");
  s = Spec();
  s.kvs[1].type = 13;
  expect_error(s.bytes(), "key 'test.u32': unknown value type 13");
  s = Spec();
  s.kvs[0].value = u64(uint64_t{1} << 40) + "test";
  expect_error(s.bytes(), "key 'general.architecture': string length 1099511627776 exceeds the file");
  s = Spec();
  s.kvs.insert(s.kvs.begin(), Kv{"", 0, ""});
  s.kvs[0].key.clear();
  std::string b = s.bytes();
  std::string huge_key = u64(~uint64_t{0} >> 1);
  b.replace(24, 8, huge_key);  // first key's length field
  expect_error(b, "key length");
  s = Spec();
  s.kvs[6].value = u32(8) + u64(uint64_t{1} << 59) + str("a");
  expect_error(s.bytes(), "key 'test.strings': array count 576460752303423488 exceeds the file");
  s.kvs[6].value = u32(12) + u64(~uint64_t{0});
  expect_error(s.bytes(), "array count");
  s.kvs[6].value = u32(77) + u64(1);
  expect_error(s.bytes(), "unknown value type 77");
  // Arrays nested 9 deep: the innermost empty.
  std::string nested;
  for (int i = 0; i < 9; ++i) nested += u32(9) + u64(1);
  nested += u32(0) + u64(0);
  s.kvs[6].value = nested;
  expect_error(s.bytes(), "nested deeper than 8");
}

TEST_F(GgufFileTest, RejectsBadAlignment) {
  for (uint32_t a : {0u, 48u, 3u}) {
    Spec s;
    s.kvs.push_back({"general.alignment", 4, u32(a)});
    expect_error(s.bytes(), "general.alignment " + std::to_string(a) + " is not a power of two");
  }
  Spec s;
  s.kvs.push_back({"general.alignment", 8, str("32")});
  expect_error(s.bytes(), "key 'general.alignment' is string, expected integer");
}

TEST_F(GgufFileTest, RejectsBadTensorInfos) {
  Spec s;
  s.tensors[0].ne = {};
  expect_error(s.bytes(), "tensor 'a': n_dims 0 is not in 1..4");
  s.tensors[0].ne = {1, 1, 1, 1, 4};
  expect_error(s.bytes(), "tensor 'a': n_dims 5 is not in 1..4");
  s = Spec();
  s.tensors[0].ne = {4, 0};
  expect_error(s.bytes(), "tensor 'a': ne[1] is 0");
  s.tensors[0].ne = {uint64_t{1} << 32, uint64_t{1} << 32, 4};
  expect_error(s.bytes(), "tensor 'a': element count overflows");
  s = Spec();
  s.tensors[0].type = 99;
  expect_error(s.bytes(), "tensor 'a': unsupported tensor type 99");
  s.tensors[0].type = 20;
  expect_error(s.bytes(), "unsupported tensor type 20 (IQ4_NL)");
  s = Spec();
  s.tensors[1].ne = {16};
  expect_error(s.bytes(), "tensor 'b': ne[0] 16 is not a multiple of the Q8_0 block size 32");
  s = Spec();
  s.tensors[1].offset = 64;
  expect_error(s.bytes(), "tensor 'b': data [64, +34) extends past the end");
  s.tensors[1].offset = ~uint64_t{0} - 31;
  expect_error(s.bytes(), "extends past the end");
  s.tensors[0].ne = {uint64_t{1} << 40, 4};
  expect_error(s.bytes(), "tensor 'a': data [0, +17592186044416) extends past the end");
  s = Spec();
  s.tensors[1].offset = 4;
  expect_error(s.bytes(), "tensor 'b': offset 4 is not a multiple of the alignment 32");
  s = Spec();
  s.tensors[1].offset = 0;
  expect_error(s.bytes(), "tensors 'a' and 'b' overlap");
  s = Spec();
  s.tensors[1].name = "a";
  expect_error(s.bytes(), "duplicate tensor name 'a'");
  s = Spec();
  s.tensors[1].name = "";
  expect_error(s.bytes(), "tensor #1: empty name");
  s = Spec();
  s.tensors[0].name = std::string("bad\nname") + std::string(100, 'x');
  s.tensors[0].type = 99;
  expect_error(s.bytes(), "tensor 'bad\\x0anamexxx");  // one line, control characters escaped
}

TEST_F(GgufFileTest, EveryTruncationFailsCleanly) {
  const std::string full = Spec().bytes();
  for (size_t n = 0; n < full.size(); ++n) {
    fs::path p = write(full.substr(0, n));
    try {
      GgufFile::open(p);
      ADD_FAILURE() << "truncation to " << n << " bytes was accepted";
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_EQ(msg.rfind(p.string() + ": ", 0), 0u) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
  EXPECT_NO_THROW(GgufFile::open(write(full)));
}

TEST_F(GgufFileTest, RandomCorruptionNeverCrashes) {
  const std::string full = Spec().bytes();
  std::mt19937 rng(1234);
  int accepted = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string b = full;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      size_t at = rng() % b.size();
      // Favour the values that matter: high bytes of counts and lengths, and small values.
      b[at] = static_cast<char>(rng() % 3 == 0 ? 0xff : rng() % 256);
    }
    try {
      auto f = GgufFile::open(write(b));
      ++accepted;
      for (const std::string& k : f->keys()) (void)f->type(k);
    } catch (const Error&) {
    }
  }
  SUCCEED() << accepted << " corrupted files were still valid";
}

TEST_F(GgufFileTest, MissingFile) {
  try {
    GgufFile::open(dir_ / "absent.gguf");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("absent.gguf: cannot open"), std::string::npos);
  }
}

}  // namespace
}  // namespace mk
