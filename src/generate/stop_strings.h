// StopStrings: watches streamed text for stop strings, holding back any tail that could still
// become one, so a stop string split across tokens is never printed (not even its first part).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mk {

class StopStrings {
 public:
  explicit StopStrings(std::vector<std::string> stops);

  // Appends decoded text; returns what can be shown now. Once a stop string appears, returns the
  // text before it, sets stopped(), and ignores everything pushed afterwards.
  std::string push(std::string_view text);
  // The held-back tail at the end of generation (nothing once stopped).
  std::string flush();

  bool stopped() const { return stopped_; }
  const std::string& matched() const { return matched_; }  // the stop string that ended it

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
  std::string matched_;
};

}  // namespace mk
