// GgufFile: a validated, memory-mapped view of a GGUF file (llama.cpp's model format): metadata
// key/values and tensor descriptors. Nothing is dequantized here; see dequant.h and gguf_model.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mk {

class MappedFile;

enum class GgufValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9,
  U64 = 10, I64 = 11, F64 = 12
};

// The ggml tensor types this loader knows the block layout of; any other number is rejected at
// open. Q8_1 and Q8_K are llama.cpp's internal dot-product formats, accepted for completeness.
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9, Q2_K = 10,
  Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30
};

struct GgufTensorInfo {
  std::string name;
  GgmlType type;
  std::vector<uint64_t> ne;  // ggml order: ne[0] innermost (contiguous); HF shape is reversed
  uint64_t offset;           // relative to the data blob
  const std::byte* data;     // inside the mapping, valid while the GgufFile lives
  size_t nbytes;
};

class GgufFile {
 public:
  // Throws mk::Error "<path>: <what>" for anything malformed; never reads outside the file and
  // allocates only in proportion to what the file's bytes can hold.
  static std::unique_ptr<GgufFile> open(const std::filesystem::path& path);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  uint32_t version() const { return version_; }
  const std::filesystem::path& path() const { return path_; }

  // Metadata. Every getter throws mk::Error naming the key when it is absent or mistyped.
  bool has(std::string_view key) const;
  GgufValueType type(std::string_view key) const;
  GgufValueType array_type(std::string_view key) const;  // element type of an array value
  uint64_t array_size(std::string_view key) const;
  std::string get_string(std::string_view key) const;
  int64_t get_int(std::string_view key) const;      // any integer type, or bool
  double get_float(std::string_view key) const;     // f32/f64, or any integer type
  bool get_bool(std::string_view key) const;
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<float> get_float_array(std::string_view key) const;    // float or integer elements
  std::vector<int64_t> get_int_array(std::string_view key) const;    // integer or bool elements
  // Absent -> the default; present but mistyped -> still an error.
  std::string get_string_or(std::string_view key, std::string_view def) const;
  int64_t get_int_or(std::string_view key, int64_t def) const;
  double get_float_or(std::string_view key, double def) const;
  bool get_bool_or(std::string_view key, bool def) const;
  std::vector<std::string> keys() const;  // in file order

  uint64_t alignment() const { return alignment_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;  // nullptr when absent

  // Undecoded value: points into the mapping. Arrays: `data` is the first element, `count` the
  // number of elements. Strings: `data`/`count` are the bytes.
  struct Value {
    GgufValueType type;
    GgufValueType elem_type;
    uint64_t count;
    const std::byte* data;
  };

 private:
  GgufFile() = default;
  const Value& value(std::string_view key) const;
  [[noreturn]] void fail(const std::string& what) const;
  [[noreturn]] void wrong_type(std::string_view key, const Value& v, const char* wanted) const;

  friend class GgufParser;
  std::filesystem::path path_;
  std::unique_ptr<MappedFile> map_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::vector<std::pair<std::string, Value>> kv_;  // file order
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;  // views into tensors_[i].name
};

const char* gguf_value_type_name(GgufValueType t);

}  // namespace mk
