// Helpers shared by the libFuzzer targets: the input as a file (the loaders take paths and mmap
// them), splitting the input into parts, and loading the fixed tokenizers some targets need.
// Targets catch mk::Error only: anything else that escapes is a finding.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/error.h"
#include "tokenizer/tokenizer.h"

#ifndef MK_FUZZ_SOURCE_DIR
#error "MK_FUZZ_SOURCE_DIR must name the repository root (fuzz/CMakeLists.txt sets it)"
#endif

namespace mk::fuzz {

// An anonymous in-memory file (memfd) rewritten with each input; path() opens it again, so
// MappedFile maps exactly the input's bytes. Nothing is left on disk.
class MemFile {
 public:
  explicit MemFile(const char* name) {
    fd_ = ::memfd_create(name, MFD_CLOEXEC);
    if (fd_ < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  const std::string& write(const uint8_t* data, size_t size) {
    if (::ftruncate(fd_, 0) != 0) std::abort();
    size_t done = 0;
    while (done < size) {
      const ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
    return path_;
  }
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// The input cut at NUL bytes: part 0, part 1, ... (an input without NUL is one part).
inline std::vector<std::string_view> split(const uint8_t* data, size_t size, size_t max_parts = 64) {
  std::vector<std::string_view> parts;
  std::string_view s(reinterpret_cast<const char*>(data), size);
  while (parts.size() + 1 < max_parts) {
    const size_t at = s.find('\0');
    if (at == std::string_view::npos) break;
    parts.push_back(s.substr(0, at));
    s.remove_prefix(at + 1);
  }
  parts.push_back(s);
  return parts;
}

// A tokenizer of tests/data/tokenizer, loaded once (a failure here is a broken checkout: abort).
inline std::unique_ptr<Tokenizer> load_test_tokenizer(const char* file) {
  const std::string path = std::string(MK_FUZZ_SOURCE_DIR) + "/tests/data/tokenizer/" + file;
  try {
    return Tokenizer::from_tokenizer_json(path);
  } catch (const Error& e) {
    std::fprintf(stderr, "fuzz: cannot load %s: %s\n", path.c_str(), e.what());
    std::abort();
  }
}

// Reports a broken documented invariant as a crash (libFuzzer saves the input).
[[noreturn]] inline void invariant_failed(const char* what) {
  std::fprintf(stderr, "fuzz: invariant broken: %s\n", what);
  std::abort();
}

}  // namespace mk::fuzz
