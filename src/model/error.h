// The one error type that loaders, the engine and the CLI raise for bad input: a single line that
// names the file or field at fault. Internal invariants use assert instead.
#pragma once

#include <stdexcept>
#include <string>

namespace mk {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace mk
