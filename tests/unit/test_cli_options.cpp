// The command line's GPU options reach EngineOptions as they were given: --pipe-inflight's "auto"
// leaves the GPU backend's default, a number sets it, anything else is a usage error.
#include <gtest/gtest.h>

#include <vector>

#include "cli/options.h"

namespace mk::cli {
namespace {

// Parses `args` into a fresh ExecFlags and returns its EngineOptions.
EngineOptions parsed(std::vector<std::string> args) {
  CLI::App app;
  ExecFlags flags;
  flags.add(app);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them last first
  app.parse(reversed);
  return flags.engine_options();
}

TEST(CliOptions, PipeInflightAutoLeavesTheDefault) {
  EXPECT_FALSE(parsed({}).gpu_pipe_inflight.has_value());
  EXPECT_FALSE(parsed({"--pipe-inflight", "auto"}).gpu_pipe_inflight.has_value());
}

TEST(CliOptions, PipeInflightNumberIsPassedOn) {
  EXPECT_EQ(parsed({"--pipe-inflight", "0"}).gpu_pipe_inflight, 0u);
  EXPECT_EQ(parsed({"--pipe-inflight", "4"}).gpu_pipe_inflight, 4u);
  EXPECT_EQ(parsed({"--pipe-inflight", "16"}).gpu_pipe_inflight, 16u);
}

TEST(CliOptions, PipeInflightOutOfRangeIsAUsageError) {
  for (const char* bad : {"17", "-1", "many", "", "123", "4x"})
    EXPECT_THROW(parsed({"--pipe-inflight", bad}), CLI::ValidationError) << bad;
}

}  // namespace
}  // namespace mk::cli
