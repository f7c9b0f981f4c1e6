// Safetensors reader: one memory-mapped .safetensors file, or a Hugging Face model folder
// (model.safetensors, or model.safetensors.index.json plus shards), every header checked first.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/mapped_file.h"
#include "model/tensor_source.h"

namespace mk {

class SafetensorsFile : public TensorSource {
 public:
  // Maps the file and validates the whole header: sizes, JSON, dtypes, shapes, byte ranges inside
  // the data and not overlapping, unique names. Throws mk::Error (one line, starting with the path).
  static std::unique_ptr<SafetensorsFile> open(const std::filesystem::path& path);

  const TensorInfo* find(std::string_view name) const override;
  std::vector<std::string> names() const override;  // sorted
  const std::map<std::string, std::string>& metadata() const { return metadata_; }  // "__metadata__"
  const std::filesystem::path& path() const { return file_->path(); }

 private:
  explicit SafetensorsFile(std::unique_ptr<MappedFile> file) : file_(std::move(file)) {}

  std::unique_ptr<MappedFile> file_;
  std::map<std::string, TensorInfo, std::less<>> tensors_;
  std::map<std::string, std::string> metadata_;
};

class SafetensorsModel : public TensorSource {
 public:
  // `path` is a model folder holding model.safetensors (preferred, as transformers does) or
  // model.safetensors.index.json and its shards; a path to a .safetensors file also works.
  // Shards named by the index must be plain file names in the folder, must all exist, must each
  // hold the tensors the index maps to them, and must not share a tensor name.
  static std::unique_ptr<SafetensorsModel> open(const std::filesystem::path& path);

  const TensorInfo* find(std::string_view name) const override;
  std::vector<std::string> names() const override;  // sorted
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  SafetensorsModel() = default;

  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*, std::less<>> tensors_;  // into files_
};

}  // namespace mk
