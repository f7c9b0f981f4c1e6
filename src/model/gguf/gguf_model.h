// GgufModel: a GGUF file seen as a Hugging Face model: ModelConfig from the metadata and every
// tensor dequantized to float32 under its HF name and shape (llama's Q/K row permutation undone).
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/config.h"
#include "model/gguf/gguf_file.h"
#include "model/tensor_source.h"

namespace mk {

class GgufModel : public TensorSource {
 public:
  // Reads the config, then dequantizes every mapped tensor (progress(done_bytes, total_bytes) is
  // called as it goes, counting GGUF bytes). Throws mk::Error naming the path and the key or
  // tensor for an unknown architecture, a missing key or an unsupported tensor.
  static std::unique_ptr<GgufModel> open(const std::filesystem::path& path,
                                         std::function<void(size_t, size_t)> progress = {});
  // The same from a file already opened (e.g. to read its config first without parsing it twice).
  static std::unique_ptr<GgufModel> open(std::unique_ptr<GgufFile> file,
                                         std::function<void(size_t, size_t)> progress = {});

  const ModelConfig& config() const { return config_; }
  const GgufFile& file() const { return *file_; }

  // F32 tensors with HF names and shapes; the buffers live as long as this object.
  const TensorInfo* find(std::string_view name) const override;
  std::vector<std::string> names() const override;
  // The GGUF tensor name an HF name was mapped from ("" when absent).
  std::string origin(std::string_view name) const override;
  // GGUF tensors with no HF counterpart (e.g. llama3's rope_freqs.weight), not loaded.
  const std::vector<std::string>& unmapped() const { return unmapped_; }

 private:
  GgufModel() = default;

  std::unique_ptr<GgufFile> file_;
  ModelConfig config_;
  std::vector<TensorInfo> tensors_;
  std::vector<std::string> origins_;  // GGUF names, parallel to tensors_
  std::vector<std::unique_ptr<float[]>> buffers_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<std::string> unmapped_;
};

// The HF name of a GGUF tensor for a GGUF architecture ("llama", "qwen2", "qwen3", "gpt2"), or ""
// when it has none.
std::string gguf_to_hf_name(std::string_view arch, std::string_view gguf_name);

// Builds the config from a file's metadata and tensor shapes (no tensor data is read except
// llama3's rope_freqs, from which the rope scaling parameters are recovered).
ModelConfig gguf_model_config(const GgufFile& file);

}  // namespace mk
