// NCCL, the exchange of `--tp-comm nccl`, is loaded at run time: found where the toolkit puts it,
// or named by $MK_NCCL_LIBRARY, with a one-line error naming what was tried when it is not there.
// Loading needs no GPU; running the exchange does (tests/py/test_gpu_parity.py).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>

#include "cuda/cuda_backend.h"
#include "cuda/nccl_exchange.h"
#include "model/error.h"

namespace mk {
namespace {

using ::testing::HasSubstr;

bool built_with_cuda() {
  return cuda::query_device().why_absent.find("no CUDA support") == std::string::npos;
}

TEST(NcclLibrary, LoadsAtRunTimeAndSaysItsVersion) {
  if (!built_with_cuda()) GTEST_SKIP() << "this build of mk has no CUDA support";
  unsetenv("MK_NCCL_LIBRARY");
  const std::string version = cuda::nccl_version();
  EXPECT_TRUE(std::regex_match(version, std::regex(R"(2\.\d+\.\d+)"))) << version;
}

TEST(NcclLibrary, ALibraryThatIsNotThereIsNamedInTheError) {
  if (!built_with_cuda()) GTEST_SKIP() << "this build of mk has no CUDA support";
  setenv("MK_NCCL_LIBRARY", "/nonexistent/libnccl.so.2", 1);
  EXPECT_THAT([] { cuda::nccl_version(); },
              ::testing::ThrowsMessage<Error>(HasSubstr("cannot load the NCCL library (tried /nonexistent/libnccl.so.2")));
  unsetenv("MK_NCCL_LIBRARY");
}

}  // namespace
}  // namespace mk
