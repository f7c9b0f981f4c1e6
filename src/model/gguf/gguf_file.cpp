// GgufFile: parses and validates a mapped GGUF v2/v3 file. Every count and length is checked
// against the bytes that remain before anything is allocated, so hostile files fail cleanly.
#include "model/gguf/gguf_file.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "model/error.h"
#include "model/gguf/dequant.h"
#include "model/mapped_file.h"

namespace mk {
namespace {

constexpr uint64_t kMaxTensors = uint64_t{1} << 20;
constexpr uint64_t kMaxKv = uint64_t{1} << 20;
constexpr uint64_t kMaxString = uint64_t{1} << 30;
constexpr uint64_t kMaxElements = uint64_t{1} << 60;  // keeps nbytes (<= 4 per element) < 2^62
constexpr uint64_t kMaxAlignment = uint64_t{1} << 30;
constexpr int kMaxArrayDepth = 8;
constexpr uint32_t kMaxDims = 4;
// Smallest encodings, used to reject counts that the remaining bytes could never hold.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;               // key length, key, type, value
constexpr uint64_t kMinTensorBytes = 8 + 1 + 4 + 8 + 4 + 8;  // name, n_dims, ne[0], type, offset

size_t scalar_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::U8: case GgufValueType::I8: case GgufValueType::BOOL: return 1;
    case GgufValueType::U16: case GgufValueType::I16: return 2;
    case GgufValueType::U32: case GgufValueType::I32: case GgufValueType::F32: return 4;
    case GgufValueType::U64: case GgufValueType::I64: case GgufValueType::F64: return 8;
    default: return 0;
  }
}

bool is_integer(GgufValueType t) {
  return scalar_size(t) != 0 && t != GgufValueType::F32 && t != GgufValueType::F64;
}
bool is_float(GgufValueType t) { return t == GgufValueType::F32 || t == GgufValueType::F64; }

template <typename T>
T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// False when a u64 does not fit in int64. Precondition: is_integer(t).
bool load_int(GgufValueType t, const std::byte* p, int64_t& out) {
  switch (t) {
    case GgufValueType::U8: out = load<uint8_t>(p); return true;
    case GgufValueType::I8: out = load<int8_t>(p); return true;
    case GgufValueType::BOOL: out = load<uint8_t>(p) != 0; return true;
    case GgufValueType::U16: out = load<uint16_t>(p); return true;
    case GgufValueType::I16: out = load<int16_t>(p); return true;
    case GgufValueType::U32: out = load<uint32_t>(p); return true;
    case GgufValueType::I32: out = load<int32_t>(p); return true;
    case GgufValueType::I64: out = load<int64_t>(p); return true;
    case GgufValueType::U64: {
      uint64_t u = load<uint64_t>(p);
      out = static_cast<int64_t>(u);
      return u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    }
    default: return false;
  }
}

double load_number(GgufValueType t, const std::byte* p) {
  if (t == GgufValueType::F32) return load<float>(p);
  if (t == GgufValueType::F64) return load<double>(p);
  if (t == GgufValueType::U64) return static_cast<double>(load<uint64_t>(p));
  int64_t v = 0;
  load_int(t, p, v);
  return static_cast<double>(v);
}


}  // namespace

const char* gguf_value_type_name(GgufValueType t) {
  static const char* const kNames[] = {"u8",  "i8",     "u16",   "i16", "u32", "i32", "f32",
                                       "bool", "string", "array", "u64", "i64", "f64"};
  auto i = static_cast<uint32_t>(t);
  return i < 13 ? kNames[i] : "unknown";
}

// One pass over the mapped bytes with a cursor; `where_` says which key or tensor is being read.
class GgufParser {
 public:
  explicit GgufParser(GgufFile& f)
      : f_(f), base_(f.map_->data()), size_(f.map_->size()) {}

  void parse() {
    if (size_ < 4 || std::memcmp(base_, "GGUF", 4) != 0) fail("not a GGUF file (bad magic)");
    pos_ = 4;
    where_ = "header";
    uint32_t version = u32("version");
    if (version != 2 && version != 3) {
      uint32_t swapped = __builtin_bswap32(version);
      if (swapped == 2 || swapped == 3) fail("big-endian GGUF files are not supported");
      fail("unsupported GGUF version " + std::to_string(version));
    }
    f_.version_ = version;
    uint64_t tensor_count = u64("tensor count");
    uint64_t kv_count = u64("kv count");
    if (kv_count > kMaxKv || kv_count > remaining() / kMinKvBytes)
      fail("kv count " + std::to_string(kv_count) + " is more than the file can hold");
    if (tensor_count > kMaxTensors ||
        tensor_count > (remaining() - kv_count * kMinKvBytes) / kMinTensorBytes)
      fail("tensor count " + std::to_string(tensor_count) + " is more than the file can hold");

    read_kvs(kv_count);
    read_alignment();
    read_tensors(tensor_count);
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { f_.fail(what); }

  uint64_t remaining() const { return size_ - pos_; }

  const std::byte* take(uint64_t n, const char* what) {
    if (n > remaining())
      fail("truncated: " + where_ + ": " + what + " needs " + std::to_string(n) +
           " bytes at offset " + std::to_string(pos_) + ", file is " + std::to_string(size_));
    const std::byte* p = base_ + pos_;
    pos_ += n;
    return p;
  }
  uint32_t u32(const char* what) { return load<uint32_t>(take(4, what)); }
  uint64_t u64(const char* what) { return load<uint64_t>(take(8, what)); }

  std::string_view str(const char* what) {
    uint64_t len = u64(what);
    if (len > kMaxString || len > remaining())
      fail(where_ + ": " + what + " length " + std::to_string(len) + " exceeds the file");
    const std::byte* p = take(len, what);
    return {reinterpret_cast<const char*>(p), static_cast<size_t>(len)};
  }

  GgufValueType value_type(uint32_t raw) {
    if (raw > static_cast<uint32_t>(GgufValueType::F64))
      fail(where_ + ": unknown value type " + std::to_string(raw));
    return static_cast<GgufValueType>(raw);
  }

  // Validates one value (recursively for arrays) and records where it lies.
  GgufFile::Value value(GgufValueType t, int depth) {
    if (size_t n = scalar_size(t)) return {t, t, 1, take(n, "value")};
    if (t == GgufValueType::STRING) {
      std::string_view s = str("string");
      return {t, t, s.size(), reinterpret_cast<const std::byte*>(s.data())};
    }
    if (depth >= kMaxArrayDepth)
      fail(where_ + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth));
    GgufValueType et = value_type(u32("array type"));
    uint64_t count = u64("array count");
    uint64_t min_elem = scalar_size(et) ? scalar_size(et) : (et == GgufValueType::STRING ? 8 : 12);
    if (count > remaining() / min_elem)
      fail(where_ + ": array count " + std::to_string(count) + " exceeds the file");
    const std::byte* first = base_ + pos_;
    if (scalar_size(et)) {
      take(count * min_elem, "array");
    } else {
      for (uint64_t i = 0; i < count; ++i) value(et, depth + 1);
    }
    return {GgufValueType::ARRAY, et, count, first};
  }

  void read_kvs(uint64_t kv_count) {
    std::unordered_set<std::string_view> seen;
    for (uint64_t i = 0; i < kv_count; ++i) {
      where_ = "kv #" + std::to_string(i);
      std::string_view key = str("key");
      if (key.empty()) fail(where_ + ": empty key");
      where_ = "key " + quote(key);
      if (!seen.insert(key).second) fail("duplicate key " + quote(key));
      GgufValueType t = value_type(u32("value type"));
      GgufFile::Value v = value(t, 0);
      f_.kv_index_.emplace(std::string(key), f_.kv_.size());
      f_.kv_.emplace_back(std::string(key), v);
    }
  }

  void read_alignment() {
    if (!f_.has("general.alignment")) return;
    int64_t a = f_.get_int("general.alignment");
    if (a <= 0 || static_cast<uint64_t>(a) > kMaxAlignment || !std::has_single_bit(uint64_t(a)))
      fail("general.alignment " + std::to_string(a) + " is not a power of two in [1, 2^30]");
    f_.alignment_ = static_cast<uint64_t>(a);
  }

  void read_tensors(uint64_t tensor_count) {
    const uint64_t align = f_.alignment_;
    std::unordered_set<std::string_view> seen;
    std::vector<GgufTensorInfo>& out = f_.tensors_;
    for (uint64_t i = 0; i < tensor_count; ++i) {
      where_ = "tensor #" + std::to_string(i);
      std::string_view name = str("name");
      if (name.empty()) fail(where_ + ": empty name");
      where_ = "tensor " + quote(name);
      if (!seen.insert(name).second) fail("duplicate tensor name " + quote(name));
      uint32_t n_dims = u32("n_dims");
      if (n_dims < 1 || n_dims > kMaxDims)
        fail(where_ + ": n_dims " + std::to_string(n_dims) + " is not in 1..4");
      GgufTensorInfo t{std::string(name), GgmlType::F32, {}, 0, nullptr, 0};
      uint64_t numel = 1;
      for (uint32_t d = 0; d < n_dims; ++d) {
        uint64_t n = u64("ne");
        if (n == 0) fail(where_ + ": ne[" + std::to_string(d) + "] is 0");
        if (n > kMaxElements / numel) fail(where_ + ": element count overflows");
        numel *= n;
        t.ne.push_back(n);
      }
      uint32_t type = u32("type");
      if (!ggml_type_known(type))
        fail(where_ + ": unsupported tensor type " + std::to_string(type) + " (" +
             ggml_type_name(type) + ")");
      t.type = static_cast<GgmlType>(type);
      uint64_t bs = static_cast<uint64_t>(ggml_block_size(t.type));
      if (t.ne[0] % bs != 0)
        fail(where_ + ": ne[0] " + std::to_string(t.ne[0]) + " is not a multiple of the " +
             ggml_type_name(t.type) + " block size " + std::to_string(bs));
      t.nbytes = static_cast<size_t>(numel / bs * ggml_block_bytes(t.type));
      t.offset = u64("offset");
      if (t.offset % align != 0)
        fail(where_ + ": offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
             std::to_string(align));
      out.push_back(std::move(t));
    }
    if (tensor_count == 0) return;

    const uint64_t data_start = (pos_ + align - 1) / align * align;
    if (data_start > size_) fail("truncated: the tensor data section starts past the end");
    const uint64_t blob = size_ - data_start;
    std::vector<size_t> order(out.size());
    for (size_t i = 0; i < out.size(); ++i) {
      GgufTensorInfo& t = out[i];
      if (t.offset > blob || t.nbytes > blob - t.offset)
        fail("tensor " + quote(t.name) + ": data [" + std::to_string(t.offset) + ", +" +
             std::to_string(t.nbytes) + ") extends past the end of the file (data section is " +
             std::to_string(blob) + " bytes)");
      t.data = base_ + data_start + t.offset;
      order[i] = i;
    }
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return out[a].offset < out[b].offset; });
    for (size_t k = 1; k < order.size(); ++k) {
      const GgufTensorInfo& a = out[order[k - 1]];
      const GgufTensorInfo& b = out[order[k]];
      if (a.offset + a.nbytes > b.offset)
        fail("tensors " + quote(a.name) + " and " + quote(b.name) + " overlap");
    }
    for (size_t i = 0; i < out.size(); ++i) f_.tensor_index_.emplace(out[i].name, i);
  }

  GgufFile& f_;
  const std::byte* base_;
  uint64_t size_;
  uint64_t pos_ = 0;
  std::string where_;
};

std::unique_ptr<GgufFile> GgufFile::open(const std::filesystem::path& path) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = path;
  f->map_ = std::make_unique<MappedFile>(path);
  GgufParser(*f).parse();
  return f;
}

GgufFile::~GgufFile() = default;

void GgufFile::fail(const std::string& what) const { throw Error(path_.string() + ": " + what); }

void GgufFile::wrong_type(std::string_view key, const Value& v, const char* wanted) const {
  std::string got = gguf_value_type_name(v.type);
  if (v.type == GgufValueType::ARRAY) got += std::string(" of ") + gguf_value_type_name(v.elem_type);
  fail("key " + quote(key) + " is " + got + ", expected " + wanted);
}

bool GgufFile::has(std::string_view key) const { return kv_index_.find(key) != kv_index_.end(); }

const GgufFile::Value& GgufFile::value(std::string_view key) const {
  auto it = kv_index_.find(key);
  if (it == kv_index_.end()) fail("missing key " + quote(key));
  return kv_[it->second].second;
}

GgufValueType GgufFile::type(std::string_view key) const { return value(key).type; }

GgufValueType GgufFile::array_type(std::string_view key) const {
  const Value& v = value(key);
  if (v.type != GgufValueType::ARRAY) wrong_type(key, v, "array");
  return v.elem_type;
}

uint64_t GgufFile::array_size(std::string_view key) const {
  const Value& v = value(key);
  if (v.type != GgufValueType::ARRAY) wrong_type(key, v, "array");
  return v.count;
}

std::string GgufFile::get_string(std::string_view key) const {
  const Value& v = value(key);
  if (v.type != GgufValueType::STRING) wrong_type(key, v, "string");
  return std::string(reinterpret_cast<const char*>(v.data), static_cast<size_t>(v.count));
}

int64_t GgufFile::get_int(std::string_view key) const {
  const Value& v = value(key);
  int64_t out = 0;
  if (!is_integer(v.type)) wrong_type(key, v, "integer");
  if (!load_int(v.type, v.data, out)) fail("key " + quote(key) + " does not fit in int64");
  return out;
}

double GgufFile::get_float(std::string_view key) const {
  const Value& v = value(key);
  if (!is_float(v.type) && !is_integer(v.type)) wrong_type(key, v, "number");
  return load_number(v.type, v.data);
}

bool GgufFile::get_bool(std::string_view key) const {
  const Value& v = value(key);
  if (v.type != GgufValueType::BOOL) wrong_type(key, v, "bool");
  return load<uint8_t>(v.data) != 0;
}

std::vector<std::string> GgufFile::get_string_array(std::string_view key) const {
  const Value& v = value(key);
  if (v.type != GgufValueType::ARRAY || v.elem_type != GgufValueType::STRING)
    wrong_type(key, v, "array of string");
  std::vector<std::string> out;
  out.reserve(v.count);  // validated at open: count <= bytes / 8
  const std::byte* p = v.data;
  for (uint64_t i = 0; i < v.count; ++i) {
    auto len = static_cast<size_t>(load<uint64_t>(p));
    out.emplace_back(reinterpret_cast<const char*>(p + 8), len);
    p += 8 + len;
  }
  return out;
}

std::vector<float> GgufFile::get_float_array(std::string_view key) const {
  const Value& v = value(key);
  if (v.type != GgufValueType::ARRAY || !(is_float(v.elem_type) || is_integer(v.elem_type)))
    wrong_type(key, v, "array of number");
  std::vector<float> out(v.count);
  size_t es = scalar_size(v.elem_type);
  for (uint64_t i = 0; i < v.count; ++i)
    out[i] = static_cast<float>(load_number(v.elem_type, v.data + i * es));
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(std::string_view key) const {
  const Value& v = value(key);
  if (v.type != GgufValueType::ARRAY || !is_integer(v.elem_type))
    wrong_type(key, v, "array of integer");
  std::vector<int64_t> out(v.count);
  size_t es = scalar_size(v.elem_type);
  for (uint64_t i = 0; i < v.count; ++i)
    if (!load_int(v.elem_type, v.data + i * es, out[i]))
      fail("key " + quote(key) + ": element " + std::to_string(i) + " does not fit in int64");
  return out;
}

std::string GgufFile::get_string_or(std::string_view key, std::string_view def) const {
  return has(key) ? get_string(key) : std::string(def);
}
int64_t GgufFile::get_int_or(std::string_view key, int64_t def) const {
  return has(key) ? get_int(key) : def;
}
double GgufFile::get_float_or(std::string_view key, double def) const {
  return has(key) ? get_float(key) : def;
}
bool GgufFile::get_bool_or(std::string_view key, bool def) const {
  return has(key) ? get_bool(key) : def;
}

std::vector<std::string> GgufFile::keys() const {
  std::vector<std::string> out;
  out.reserve(kv_.size());
  for (const auto& [k, v] : kv_) out.push_back(k);
  return out;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace mk
