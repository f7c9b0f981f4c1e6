// The one error type that loaders, the engine and the CLI raise for bad input: a single line that
// names the file or field at fault. Internal invariants use assert instead.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace mk {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Not enough host or GPU memory for what was asked (a model, a context length): the CLI exits 3.
class ResourceError : public Error {
 public:
  using Error::Error;
};

// Text taken from a file, made safe for a one-line error: in single quotes, control characters
// escaped as \xNN, cut after 200 characters.
std::string quote(std::string_view s);
// Line breaks turned into spaces (for messages of other libraries quoted in ours).
std::string one_line(std::string s);

}  // namespace mk
