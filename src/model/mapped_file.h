// MappedFile: a read-only memory map of a whole file (RAII). Model files are mapped, not read,
// so loading a model costs page faults on the tensors actually used, not a copy of the file.
#pragma once

#include <cstddef>
#include <filesystem>

namespace mk {

class MappedFile {
 public:
  // Throws mk::Error naming the path if it cannot be opened or mapped. An empty file maps to
  // size() == 0 and data() == nullptr.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace mk
