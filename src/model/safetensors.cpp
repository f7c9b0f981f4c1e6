// Safetensors files and sharded model folders: every byte of a header is distrusted, and checked
// before any TensorInfo points into the mapping.
#include "model/safetensors.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "model/error.h"

namespace mk {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr uint64_t kMaxHeaderBytes = 100u * 1000u * 1000u;  // as the reference implementation
constexpr uint64_t kMaxElements = uint64_t{1} << 40;
// A safetensors header nests three deep (object, entry, shape); anything far deeper is hostile and
// would only cost memory to build.
constexpr int kMaxJsonDepth = 16;


struct JsonTooDeep {};

// Parses `text`, rejecting duplicate keys: nlohmann silently keeps the last one, which would let a
// second entry for a tensor hide the first.
json parse_json_strict(std::string_view text, const std::string& where) {
  std::vector<std::set<std::string>> open_objects;
  std::optional<std::string> duplicate;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxJsonDepth) throw JsonTooDeep{};
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!duplicate && !open_objects.empty() && !open_objects.back().insert(parsed.get<std::string>()).second)
          duplicate = parsed.get<std::string>();
        break;
      default:
        break;
    }
    return true;
  };
  json root;
  try {
    root = json::parse(text.begin(), text.end(), callback);
  } catch (const JsonTooDeep&) {
    throw Error(where + " nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  } catch (const json::exception& e) {
    throw Error(where + " is not valid JSON: " + one_line(e.what()));
  }
  if (duplicate) throw Error(where + " has duplicate key " + quote(*duplicate));
  if (!root.is_object()) throw Error(where + " is not a JSON object");
  return root;
}

std::optional<DType> parse_dtype(const std::string& s) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  return std::nullopt;
}

// A non-negative JSON integer, or nullopt (negative, fractional, not a number).
std::optional<uint64_t> as_u64(const json& v) {
  if (!v.is_number_unsigned()) return std::nullopt;
  return v.get<uint64_t>();
}

struct Range {
  uint64_t begin, end;
  const std::string* name;
};

}  // namespace

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const fs::path& path) {
  std::unique_ptr<SafetensorsFile> self(new SafetensorsFile(std::make_unique<MappedFile>(path)));
  const std::string p = path.string();
  const std::byte* base = self->file_->data();
  const uint64_t size = self->file_->size();

  if (size < 8) throw Error(p + ": file is " + std::to_string(size) + " bytes, too short for a safetensors header");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(base[i]);
  if (n == 0) throw Error(p + ": header length is 0");
  if (n > kMaxHeaderBytes)
    throw Error(p + ": header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(kMaxHeaderBytes));
  if (8 + n > size)
    throw Error(p + ": header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size) +
                " bytes)");
  const std::byte* data = base + 8 + n;
  const uint64_t data_size = size - 8 - n;

  json root = parse_json_strict(std::string_view(reinterpret_cast<const char*>(base + 8), n), p + ": header");

  std::vector<Range> ranges;
  for (const auto& [name, entry] : root.items()) {
    if (name == "__metadata__") {
      if (entry.is_null()) continue;
      if (!entry.is_object()) throw Error(p + ": __metadata__ is not a JSON object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) throw Error(p + ": __metadata__ value " + quote(key) + " is not a string");
        self->metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    if (name.empty()) throw Error(p + ": tensor with an empty name");
    const std::string t = p + ": tensor " + quote(name);
    if (!entry.is_object()) throw Error(t + ": entry is not a JSON object");

    auto dt = entry.find("dtype");
    if (dt == entry.end() || !dt->is_string()) throw Error(t + ": 'dtype' is missing or not a string");
    std::optional<DType> dtype = parse_dtype(dt->get<std::string>());
    if (!dtype)
      throw Error(t + ": unsupported dtype " + quote(dt->get<std::string>()) + " (supported: F32, F16, BF16)");

    auto sh = entry.find("shape");
    if (sh == entry.end() || !sh->is_array()) throw Error(t + ": 'shape' is missing or not an array");
    std::vector<int64_t> shape;
    uint64_t numel = 1;
    for (const json& d : *sh) {
      if (d.is_number_integer() && !d.is_number_unsigned())
        throw Error(t + ": negative dimension " + d.dump() + " in 'shape'");
      std::optional<uint64_t> dim = as_u64(d);
      if (!dim) throw Error(t + ": 'shape' holds " + one_line(d.dump()).substr(0, 40) + ", not an integer");
      // Each dim is bounded on its own too: after a zero dim the product no longer grows.
      if (*dim >= kMaxElements || __builtin_mul_overflow(numel, *dim, &numel) || numel >= kMaxElements)
        throw Error(t + ": shape " + one_line(sh->dump()).substr(0, 80) + " has too many elements (limit 2^40)");
      shape.push_back(static_cast<int64_t>(*dim));
    }

    auto off = entry.find("data_offsets");
    if (off == entry.end() || !off->is_array() || off->size() != 2)
      throw Error(t + ": 'data_offsets' is missing or not an array of two integers");
    std::optional<uint64_t> begin = as_u64((*off)[0]), end = as_u64((*off)[1]);
    if (!begin || !end) throw Error(t + ": 'data_offsets' must hold two non-negative integers");
    if (*end < *begin)
      throw Error(t + ": data_offsets end " + std::to_string(*end) + " is before begin " + std::to_string(*begin));
    if (*end > data_size)
      throw Error(t + ": data_offsets [" + std::to_string(*begin) + ", " + std::to_string(*end) +
                  ") run past the end of the data (" + std::to_string(data_size) + " bytes)");
    uint64_t nbytes = numel * dtype_size(*dtype);  // < 2^42: cannot overflow
    if (*end - *begin != nbytes)
      throw Error(t + ": data_offsets span " + std::to_string(*end - *begin) + " bytes but shape and dtype " +
                  dtype_name(*dtype) + " need " + std::to_string(nbytes));

    TensorInfo info;
    info.name = name;
    info.dtype = *dtype;
    info.shape = std::move(shape);
    info.data = data + *begin;
    info.nbytes = static_cast<size_t>(nbytes);
    auto [it, inserted] = self->tensors_.emplace(name, std::move(info));
    if (nbytes > 0) ranges.push_back({*begin, *end, &it->first});
  }

  // Empty tensors own no bytes, so only non-empty ranges can overlap.
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
  for (size_t i = 1; i < ranges.size(); ++i) {
    const Range& a = ranges[i - 1];
    const Range& b = ranges[i];
    if (b.begin < a.end)
      throw Error(p + ": tensors " + quote(*a.name) + " and " + quote(*b.name) + " overlap ([" +
                  std::to_string(a.begin) + ", " + std::to_string(a.end) + ") and [" + std::to_string(b.begin) +
                  ", " + std::to_string(b.end) + "))");
  }
  return self;
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, info] : tensors_) out.push_back(name);
  return out;
}

std::unique_ptr<SafetensorsModel> SafetensorsModel::open(const fs::path& path) {
  std::unique_ptr<SafetensorsModel> self(new SafetensorsModel());
  std::error_code ec;
  fs::path single = path;
  if (!fs::is_regular_file(path, ec)) {
    if (!fs::is_directory(path, ec)) throw Error(path.string() + ": no such directory");
    single = path / "model.safetensors";
  }
  const fs::path index_path = path / "model.safetensors.index.json";
  const std::string ip = index_path.string();

  if (fs::exists(single, ec)) {
    self->files_.push_back(SafetensorsFile::open(single));
  } else if (fs::exists(index_path, ec)) {
    MappedFile index_file(index_path);
    if (index_file.size() > kMaxHeaderBytes) throw Error(ip + ": larger than " + std::to_string(kMaxHeaderBytes) + " bytes");
    json root = parse_json_strict(
        std::string_view(reinterpret_cast<const char*>(index_file.data()), index_file.size()), ip + ": index");
    auto wm = root.find("weight_map");
    if (wm == root.end() || !wm->is_object()) throw Error(ip + ": 'weight_map' is missing or not a JSON object");
    if (wm->empty()) throw Error(ip + ": 'weight_map' is empty");

    std::map<std::string, size_t> shard_index;  // shard file name -> files_ position
    for (const auto& [tensor, shard] : wm->items()) {
      if (!shard.is_string()) throw Error(ip + ": shard of tensor " + quote(tensor) + " is not a string");
      const std::string name = shard.get<std::string>();
      // Plain names only: the index must not reach outside the model folder.
      if (name.empty() || name == "." || name == ".." || name.find_first_of(std::string("/\\\0", 3)) != std::string::npos)
        throw Error(ip + ": shard " + quote(name) + " of tensor " + quote(tensor) + " is not a plain file name");
      shard_index.emplace(name, 0);
    }
    for (auto& [name, pos] : shard_index) {
      fs::path shard_path = path / name;
      if (!fs::exists(shard_path, ec))
        throw Error(shard_path.string() + ": missing shard listed in " + index_path.filename().string());
      pos = self->files_.size();
      self->files_.push_back(SafetensorsFile::open(shard_path));
    }
    for (const auto& [tensor, shard] : wm->items()) {
      const SafetensorsFile& file = *self->files_[shard_index.at(shard.get<std::string>())];
      if (!file.find(tensor))
        throw Error(ip + ": tensor " + quote(tensor) + " is mapped to shard " + quote(shard.get<std::string>()) +
                    ", which does not contain it");
    }
  } else {
    throw Error(path.string() + ": no model.safetensors or model.safetensors.index.json");
  }

  // Shards may hold tensors the index omits (transformers loads them too); a name in two shards
  // would make the result depend on load order.
  for (const auto& file : self->files_) {
    for (const std::string& name : file->names()) {
      auto [it, inserted] = self->tensors_.emplace(name, file->find(name));
      if (!inserted) {
        const SafetensorsFile* other = nullptr;
        for (const auto& f : self->files_)
          if (f->find(name) == it->second) other = f.get();
        throw Error(ip + ": tensor " + quote(name) + " is in both " + quote(other->path().filename().string()) +
                    " and " + quote(file->path().filename().string()));
      }
    }
  }
  return self;
}

const TensorInfo* SafetensorsModel::find(std::string_view name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : it->second;
}

std::vector<std::string> SafetensorsModel::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, info] : tensors_) out.push_back(name);
  return out;
}

}  // namespace mk
