// The specialized decode build (src/cuda/spec.h) is chosen only for the dimensions it was compiled
// for: Llama-3.2-1B's config matches it; a model that differs in any one dimension does not. Where
// it matches, --kernel auto runs it.
#include <gtest/gtest.h>

#include "cuda/cuda_backend.h"
#include "cuda/spec.h"
#include "graph/graph.h"
#include "model/config.h"

namespace mk {
namespace {

ModelDims dims_of(const ModelConfig& c) {
  GraphOptions o;
  o.max_ctx = 64;
  return build_graph(c, o).dims;
}

TEST(SpecializedBuild, MatchesLlama32_1BOnly) {
  const ModelConfig llama = load_config(MK_TEST_DATA_DIR "/llama-3.2-1b");
  EXPECT_TRUE(cuda::spec_matches<cuda::Llama32_1BSpec>(dims_of(llama)));
  EXPECT_TRUE(cuda::spec_matches<cuda::GenericSpec>(dims_of(llama)));  // the generic build runs anything
  for (int field = 0; field < 5; ++field) {
    ModelConfig other = llama;
    switch (field) {
      case 0: other.hidden_size = 3072; break;
      case 1: other.intermediate_size = 8960; break;
      case 2: other.head_dim = 128; break;
      case 3: other.num_heads = 16; break;
      case 4: other.num_kv_heads = 4; break;
    }
    EXPECT_FALSE(cuda::spec_matches<cuda::Llama32_1BSpec>(dims_of(other))) << "field " << field;
  }
}

TEST(SpecializedBuild, TheBuildIsNamedWhereItExists) {
  const ModelConfig llama = load_config(MK_TEST_DATA_DIR "/llama-3.2-1b");
  ModelConfig wider = llama;
  wider.hidden_size = 3072;
  EXPECT_EQ(cuda::specialized_build(dims_of(wider)), nullptr);
  const char* name = cuda::specialized_build(dims_of(llama));
  if (name == nullptr) GTEST_SKIP() << "this build of mk has no CUDA support";
  EXPECT_STREQ(name, "llama-3.2-1b");
}

TEST(SpecializedBuild, AutoPicksItWhereTheModelMatches) {
  const ModelConfig llama = load_config(MK_TEST_DATA_DIR "/llama-3.2-1b");
  ModelConfig wider = llama;
  wider.hidden_size = 3072;
  using cuda::KernelBuild;
  EXPECT_EQ(cuda::decode_build(KernelBuild::Auto, dims_of(wider)), KernelBuild::Generic);
  EXPECT_EQ(cuda::decode_build(KernelBuild::Generic, dims_of(llama)), KernelBuild::Generic);
  EXPECT_EQ(cuda::decode_build(KernelBuild::Specialized, dims_of(wider)), KernelBuild::Specialized);  // an error later
  if (cuda::specialized_build(dims_of(llama)) == nullptr) GTEST_SKIP() << "this build of mk has no CUDA support";
  EXPECT_EQ(cuda::decode_build(KernelBuild::Auto, dims_of(llama)), KernelBuild::Specialized);
}

}  // namespace
}  // namespace mk
