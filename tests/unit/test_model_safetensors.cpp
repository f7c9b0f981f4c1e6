// Tests of the safetensors reader (safetensors.cpp): valid single and sharded models, and hostile
// files that must each give their exact one-line error without crashing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "model/error.h"
#include "model/safetensors.h"

namespace mk {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("mk_test_st_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// Raw file: length prefix (the header's own length unless overridden), header, data.
std::string raw(const std::string& header, const std::string& data = "", std::optional<uint64_t> len = {}) {
  return le64(len ? *len : header.size()) + header + data;
}

template <typename T>
std::string bytes_of(std::initializer_list<T> values) {
  std::string s(values.size() * sizeof(T), '\0');
  std::memcpy(s.data(), std::data(values), s.size());
  return s;
}

struct Tensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

// A well-formed file, tensors laid out in order.
std::string build(const std::vector<Tensor>& tensors, const json& metadata = nullptr) {
  json header = json::object();
  std::string data;
  for (const Tensor& t : tensors) {
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  if (!metadata.is_null()) header["__metadata__"] = metadata;
  return raw(header.dump(), data);
}

std::string error_of(const std::function<void()>& f, const std::string& prefix) {
  try {
    f();
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_THAT(msg, StartsWith(prefix));
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    return msg;
  }
  ADD_FAILURE() << "no error";
  return "";
}

class Safetensors : public ::testing::Test {
 protected:
  fs::path file(const std::string& bytes, const std::string& name = "model.safetensors") {
    fs::path p = dir_.path() / name;
    write_file(p, bytes);
    return p;
  }
  // Writes `bytes` as a file and returns the error that opening it gives.
  std::string file_error(const std::string& bytes) {
    fs::path p = file(bytes);
    return error_of([&] { SafetensorsFile::open(p); }, p.string() + ": ");
  }
  // The error of a file whose header is `header` and whose data is `data_size` zero bytes.
  std::string header_error(const std::string& header, size_t data_size = 16) {
    return file_error(raw(header, std::string(data_size, '\0')));
  }
  std::string model_error() {
    return error_of([&] { SafetensorsModel::open(dir_.path()); }, dir_.path().string());
  }
  std::string p() const { return (dir_.path() / "model.safetensors").string(); }

  TempDir dir_;
};

TEST_F(Safetensors, ValidSingleFile) {
  fs::path path = file(build({{"w.f32", "F32", {2, 2}, bytes_of<float>({1.0f, -2.0f, 0.5f, 3.0f})},
                              {"w.f16", "F16", {3}, bytes_of<uint16_t>({0x3c00, 0xc000, 0x0001})},
                              {"w.bf16", "BF16", {1, 2}, bytes_of<uint16_t>({0x3f80, 0xc040})},
                              {"scalar", "F32", {}, bytes_of<float>({7.0f})},
                              {"empty", "F16", {0, 8}, ""}},
                             {{"format", "pt"}}));
  auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f->names(), (std::vector<std::string>{"empty", "scalar", "w.bf16", "w.f16", "w.f32"}));
  EXPECT_EQ(f->metadata().at("format"), "pt");
  EXPECT_EQ(f->find("missing"), nullptr);

  const TensorInfo* t = f->find("w.f32");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->name, "w.f32");
  EXPECT_EQ(t->dtype, DType::F32);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(t->nbytes, 16u);
  std::vector<float> v(4);
  convert_to_f32(*t, v.data());
  EXPECT_EQ(v, (std::vector<float>{1.0f, -2.0f, 0.5f, 3.0f}));

  t = f->find("w.f16");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, DType::F16);
  v.resize(3);
  convert_to_f32(*t, v.data());
  EXPECT_EQ(v, (std::vector<float>{1.0f, -2.0f, 5.9604645e-8f}));

  t = f->find("w.bf16");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, DType::BF16);
  v.resize(2);
  convert_to_f32(*t, v.data());
  EXPECT_EQ(v, (std::vector<float>{1.0f, -3.0f}));

  EXPECT_EQ(f->find("scalar")->numel(), 1);
  EXPECT_EQ(f->find("empty")->numel(), 0);
  EXPECT_EQ(f->find("empty")->nbytes, 0u);

  // The folder form opens the same file.
  auto m = SafetensorsModel::open(dir_.path());
  EXPECT_EQ(m->names(), f->names());
  EXPECT_EQ(m->files().size(), 1u);
  ASSERT_NE(m->find("w.bf16"), nullptr);
  EXPECT_EQ(m->find("w.bf16")->nbytes, 4u);
}

// Written by the Python safetensors 0.8 writer (padded header, empty tensor, metadata).
TEST_F(Safetensors, FileFromPythonWriter) {
  auto f = SafetensorsFile::open(MK_TEST_DATA_DIR "/model/tiny.safetensors");
  EXPECT_EQ(f->names(), (std::vector<std::string>{"a.f32", "b.f16", "c.bf16", "d.empty"}));
  EXPECT_EQ(f->metadata().at("format"), "pt");
  std::vector<float> a(6), b(4), c(2);
  convert_to_f32(*f->find("a.f32"), a.data());
  convert_to_f32(*f->find("b.f16"), b.data());
  convert_to_f32(*f->find("c.bf16"), c.data());
  EXPECT_EQ(a, (std::vector<float>{1.0f, -2.5f, 3.25f, 0.0f, 0.001f, -7.0f}));
  EXPECT_EQ(b, (std::vector<float>{1.0f, -0.5f, 65504.0f, 5.960464477539063e-08f}));
  EXPECT_EQ(c, (std::vector<float>{3.140625f, -1.0002555517425873e+30f}));
  EXPECT_EQ(f->find("c.bf16")->shape, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(f->find("d.empty")->shape, (std::vector<int64_t>{0, 4}));
}

TEST_F(Safetensors, ValidShardedFolder) {
  file(build({{"a", "F32", {2}, bytes_of<float>({1.0f, 2.0f})}, {"b", "BF16", {1}, bytes_of<uint16_t>({0x4000})}}),
       "model-00001-of-00002.safetensors");
  file(build({{"c", "F16", {2}, bytes_of<uint16_t>({0x3c00, 0x4000})}}), "model-00002-of-00002.safetensors");
  json index = {{"metadata", {{"total_size", 14}}},
                {"weight_map",
                 {{"a", "model-00001-of-00002.safetensors"},
                  {"b", "model-00001-of-00002.safetensors"},
                  {"c", "model-00002-of-00002.safetensors"}}}};
  file(index.dump(2), "model.safetensors.index.json");
  auto m = SafetensorsModel::open(dir_.path());
  EXPECT_EQ(m->names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(m->files().size(), 2u);
  float v[2];
  convert_to_f32(*m->find("b"), v);
  EXPECT_EQ(v[0], 2.0f);
  convert_to_f32(*m->find("c"), v);
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], 2.0f);
  EXPECT_EQ(m->find("zzz"), nullptr);
}

TEST_F(Safetensors, Truncated) {
  EXPECT_EQ(file_error(""), p() + ": file is 0 bytes, too short for a safetensors header");
  EXPECT_EQ(file_error(std::string("\x10\0\0", 3)), p() + ": file is 3 bytes, too short for a safetensors header");
  std::string whole = build({{"w", "F32", {4}, std::string(16, '\0')}});
  uint64_t n = whole.size() - 8 - 16;
  // Cut inside the header.
  EXPECT_EQ(file_error(whole.substr(0, 8 + n / 2)), p() + ": header length " + std::to_string(n) +
                                                        " runs past the end of the file (" +
                                                        std::to_string(8 + n / 2) + " bytes)");
  // Cut inside the data.
  EXPECT_EQ(file_error(whole.substr(0, whole.size() - 3)),
            p() + ": tensor 'w': data_offsets [0, 16) run past the end of the data (13 bytes)");
}

TEST_F(Safetensors, HeaderLength) {
  EXPECT_EQ(file_error(raw("{}", "", 100)), p() + ": header length 100 runs past the end of the file (10 bytes)");
  EXPECT_EQ(file_error(raw("{}", "", uint64_t{1} << 63)),
            p() + ": header length 9223372036854775808 exceeds the limit of 100000000");
  EXPECT_EQ(file_error(raw("{}", "", UINT64_MAX)),
            p() + ": header length 18446744073709551615 exceeds the limit of 100000000");
  EXPECT_EQ(file_error(raw("", "abcd")), p() + ": header length is 0");
}

TEST_F(Safetensors, HeaderNotJson) {
  EXPECT_THAT(header_error("{\"w\": "), StartsWith(p() + ": header is not valid JSON: "));
  EXPECT_THAT(header_error("not json"), HasSubstr("parse error at line 1, column 2"));
  EXPECT_THAT(header_error("{\"a\": \"\xc3\x28\"}"), HasSubstr("header is not valid JSON"));  // bad UTF-8
  EXPECT_EQ(header_error("[1, 2, 3]"), p() + ": header is not a JSON object");
  EXPECT_EQ(header_error("\"str\""), p() + ": header is not a JSON object");
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(header_error("{\"w\": " + deep + "}"), p() + ": header nests deeper than 16 levels");
}

TEST_F(Safetensors, BadEntries) {
  auto entry = [](const std::string& body) { return "{\"w\": " + body + "}"; };
  std::string t = p() + ": tensor 'w': ";
  EXPECT_EQ(header_error(entry("[]")), t + "entry is not a JSON object");
  EXPECT_EQ(header_error(entry(R"({"shape": [1], "data_offsets": [0, 4]})")), t + "'dtype' is missing or not a string");
  EXPECT_EQ(header_error(entry(R"({"dtype": 3, "shape": [1], "data_offsets": [0, 4]})")),
            t + "'dtype' is missing or not a string");
  EXPECT_EQ(header_error(entry(R"({"dtype": "F32", "shape": 4, "data_offsets": [0, 16]})")),
            t + "'shape' is missing or not an array");
  EXPECT_EQ(header_error(entry(R"({"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]})")),
            t + "'shape' holds 2.0, not an integer");
  EXPECT_EQ(header_error(entry(R"({"dtype": "F32", "shape": [2], "data_offsets": [0]})")),
            t + "'data_offsets' is missing or not an array of two integers");
  EXPECT_EQ(header_error(entry(R"({"dtype": "F32", "shape": [2], "data_offsets": [0, "8"]})")),
            t + "'data_offsets' must hold two non-negative integers");
  EXPECT_EQ(header_error(entry(R"({"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]})")),
            t + "'data_offsets' must hold two non-negative integers");
  EXPECT_EQ(header_error(R"({"": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})"),
            p() + ": tensor with an empty name");
  EXPECT_EQ(header_error(R"({"__metadata__": {"k": 1}})"), p() + ": __metadata__ value 'k' is not a string");
  EXPECT_EQ(header_error(R"({"__metadata__": []})"), p() + ": __metadata__ is not a JSON object");
}

TEST_F(Safetensors, UnknownDtype) {
  EXPECT_EQ(header_error(R"({"ids": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}})"),
            p() + ": tensor 'ids': unsupported dtype 'I64' (supported: F32, F16, BF16)");
  EXPECT_EQ(header_error(R"({"q": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}})"),
            p() + ": tensor 'q': unsupported dtype 'F8_E4M3' (supported: F32, F16, BF16)");
}

TEST_F(Safetensors, Shapes) {
  std::string t = p() + ": tensor 'w': ";
  EXPECT_EQ(header_error(R"({"w": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]}})"),
            t + "negative dimension -1 in 'shape'");
  // 2^32 * 2^32 wraps to 0 in 64-bit arithmetic: the checked product must still refuse it.
  EXPECT_EQ(header_error(R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})"),
            t + "shape [4294967296,4294967296] has too many elements (limit 2^40)");
  EXPECT_THAT(header_error(R"({"w": {"dtype": "F32", "shape": [1048576, 1048576], "data_offsets": [0, 0]}})"),
              HasSubstr("has too many elements (limit 2^40)"));
  // After a zero dim the product stays 0, so each dim is bounded on its own.
  EXPECT_THAT(header_error(R"({"w": {"dtype": "F32", "shape": [0, 18446744073709551615], "data_offsets": [0, 0]}})"),
              HasSubstr("has too many elements"));
  EXPECT_EQ(header_error(R"({"w": {"dtype": "F32", "shape": [18446744073709551616], "data_offsets": [0, 0]}})"),
            t + "'shape' holds 1.8446744073709552e+19, not an integer");
}

TEST_F(Safetensors, Offsets) {
  std::string t = p() + ": tensor 'w': ";
  EXPECT_EQ(header_error(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})"),
            t + "data_offsets [8, 24) run past the end of the data (16 bytes)");
  EXPECT_EQ(header_error(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 18446744073709551615]}})"),
            t + "data_offsets [0, 18446744073709551615) run past the end of the data (16 bytes)");
  EXPECT_EQ(header_error(R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})"),
            t + "data_offsets end 4 is before begin 8");
  EXPECT_EQ(header_error(R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}})"),
            t + "data_offsets span 16 bytes but shape and dtype F32 need 12");
  EXPECT_EQ(header_error(R"({"w": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 16]}})"),
            t + "data_offsets span 16 bytes but shape and dtype BF16 need 8");
  EXPECT_EQ(header_error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                             "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})"),
            p() + ": tensors 'a' and 'b' overlap ([0, 8) and [4, 12))");
  EXPECT_EQ(header_error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
                             "b": {"dtype": "F16", "shape": [4], "data_offsets": [8, 16]}})"),
            p() + ": tensors 'a' and 'b' overlap ([8, 16) and [8, 16))");
  // Adjacent ranges and empty tensors anywhere are fine.
  fs::path ok = file(raw(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                            "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
                            "e": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]}})",
                         std::string(16, '\0')),
                     "ok.safetensors");
  EXPECT_EQ(SafetensorsFile::open(ok)->names().size(), 3u);
}

TEST_F(Safetensors, DuplicateName) {
  EXPECT_EQ(header_error(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                             "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})"),
            p() + ": header has duplicate key 'w'");
  EXPECT_EQ(header_error(R"({"w": {"dtype": "F32", "dtype": "I64", "shape": [1], "data_offsets": [0, 4]}})"),
            p() + ": header has duplicate key 'dtype'");
}

TEST_F(Safetensors, HostileNamesStayOnOneLine) {
  EXPECT_EQ(header_error(R"({"a\nb": {"dtype": "I8", "shape": [1], "data_offsets": [0, 1]}})"),
            p() + ": tensor 'a\\x0ab': unsupported dtype 'I8' (supported: F32, F16, BF16)");
}

TEST_F(Safetensors, Folder) {
  EXPECT_EQ(model_error(), dir_.path().string() + ": no model.safetensors or model.safetensors.index.json");
  std::string missing = (dir_.path() / "nope").string();
  EXPECT_EQ(error_of([&] { SafetensorsModel::open(missing); }, missing), missing + ": no such directory");
  // A path to a file opens that file alone.
  fs::path single = file(build({{"x", "F32", {1}, bytes_of<float>({1.0f})}}), "other.safetensors");
  EXPECT_EQ(SafetensorsModel::open(single)->names(), std::vector<std::string>{"x"});
}

class Sharded : public Safetensors {
 protected:
  void SetUp() override {
    file(build({{"a", "F32", {1}, bytes_of<float>({1.0f})}}), "s1.safetensors");
    file(build({{"b", "F32", {1}, bytes_of<float>({2.0f})}}), "s2.safetensors");
  }
  std::string index(const json& weight_map) {
    file(json{{"weight_map", weight_map}}.dump(), "model.safetensors.index.json");
    return (dir_.path() / "model.safetensors.index.json").string();
  }
  std::string index_error(const json& weight_map) {
    std::string ip = index(weight_map);
    return model_error();
  }
};

TEST_F(Sharded, MissingShard) {
  EXPECT_EQ(index_error({{"a", "s1.safetensors"}, {"b", "s3.safetensors"}}),
            (dir_.path() / "s3.safetensors").string() + ": missing shard listed in model.safetensors.index.json");
}

TEST_F(Sharded, ShardPathEscapingFolder) {
  std::string ip = (dir_.path() / "model.safetensors.index.json").string();
  EXPECT_EQ(index_error({{"a", "../s1.safetensors"}}),
            ip + ": shard '../s1.safetensors' of tensor 'a' is not a plain file name");
  EXPECT_EQ(index_error({{"a", "/etc/passwd"}}), ip + ": shard '/etc/passwd' of tensor 'a' is not a plain file name");
  EXPECT_EQ(index_error({{"a", ".."}}), ip + ": shard '..' of tensor 'a' is not a plain file name");
  EXPECT_EQ(index_error({{"a", "sub\\s1.safetensors"}}),
            ip + ": shard 'sub\\s1.safetensors' of tensor 'a' is not a plain file name");
  EXPECT_EQ(index_error({{"a", ""}}), ip + ": shard '' of tensor 'a' is not a plain file name");
}

TEST_F(Sharded, TensorMissingFromShard) {
  std::string ip = (dir_.path() / "model.safetensors.index.json").string();
  EXPECT_EQ(index_error({{"a", "s1.safetensors"}, {"b", "s1.safetensors"}}),
            ip + ": tensor 'b' is mapped to shard 's1.safetensors', which does not contain it");
}

TEST_F(Sharded, SameTensorInTwoShards) {
  file(build({{"a", "F32", {1}, bytes_of<float>({3.0f})}, {"b", "F32", {1}, bytes_of<float>({2.0f})}}),
       "s2.safetensors");
  std::string ip = (dir_.path() / "model.safetensors.index.json").string();
  EXPECT_EQ(index_error({{"a", "s1.safetensors"}, {"b", "s2.safetensors"}}),
            ip + ": tensor 'a' is in both 's1.safetensors' and 's2.safetensors'");
}

TEST_F(Sharded, BadIndex) {
  std::string ip = (dir_.path() / "model.safetensors.index.json").string();
  EXPECT_EQ(index_error(json::object()), ip + ": 'weight_map' is empty");
  EXPECT_EQ(index_error({{"a", 1}}), ip + ": shard of tensor 'a' is not a string");
  file("{\"weight_map\": {\"a\": \"s1.safetensors\", \"a\": \"s2.safetensors\"}}", "model.safetensors.index.json");
  EXPECT_EQ(model_error(), ip + ": index has duplicate key 'a'");
  file("{\"weight_map\": [", "model.safetensors.index.json");
  EXPECT_THAT(model_error(), StartsWith(ip + ": index is not valid JSON: "));
  file("[]", "model.safetensors.index.json");
  EXPECT_EQ(model_error(), ip + ": index is not a JSON object");
  file("{}", "model.safetensors.index.json");
  EXPECT_EQ(model_error(), ip + ": 'weight_map' is missing or not a JSON object");
}

TEST_F(Sharded, BadShardReportsShardPath) {
  file("garbage!", "s2.safetensors");
  std::string s2 = (dir_.path() / "s2.safetensors").string();
  index({{"a", "s1.safetensors"}, {"b", "s2.safetensors"}});
  EXPECT_EQ(model_error(), s2 + ": header length 2406443243860549991 exceeds the limit of 100000000");
}

}  // namespace
}  // namespace mk
