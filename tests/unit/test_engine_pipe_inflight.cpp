// `--pipe-inflight auto` (cuda::auto_pipe_inflight): a cap of 3 copies in flight where it was
// measured to pay, on an H100's memory with models whose matvec pages are all whole; none on faster
// memory (the H200), on memory not measured, without cp.async.bulk, or with partial pages (Qwen2.5-1.5B).
#include <gtest/gtest.h>

#include "cuda/cuda_backend.h"
#include "engine_test_util.h"
#include "graph/graph.h"

namespace mk {
namespace {

constexpr double kH100 = 3352, kH200 = 4800, kA10 = 600;  // peak GB/s, as query_device reports them

ModelDims dims_of(const ModelConfig& c) {
  GraphOptions o;
  o.max_ctx = 64;
  return build_graph(c, o).dims;
}

TEST(PipeInflight, ThreeOnAnH100WhereEveryPageIsWhole) {
  EXPECT_EQ(cuda::auto_pipe_inflight(kH100, true, dims_of(test::llama_3_2_1b_config())), 3u);
  EXPECT_EQ(cuda::auto_pipe_inflight(kH100, true, dims_of(test::llama_3_2_3b_config())), 3u);
}

TEST(PipeInflight, NoneWithPartialPages) {
  EXPECT_EQ(cuda::auto_pipe_inflight(kH100, true, dims_of(test::qwen2_5_1_5b_config())), 0u);
  ModelConfig c = test::llama_3_2_1b_config();
  c.intermediate_size = 8960;  // down's pages: 8 whole, then 768 columns
  EXPECT_EQ(cuda::auto_pipe_inflight(kH100, true, dims_of(c)), 0u);
}

TEST(PipeInflight, NoneOnMemoryItWasNotMeasuredToPayOn) {
  const ModelDims llama = dims_of(test::llama_3_2_1b_config());
  EXPECT_EQ(cuda::auto_pipe_inflight(kH200, true, llama), 0u);
  EXPECT_EQ(cuda::auto_pipe_inflight(kA10, true, llama), 0u);
  EXPECT_EQ(cuda::auto_pipe_inflight(0, true, llama), 0u);       // not reported
  EXPECT_EQ(cuda::auto_pipe_inflight(kH100, false, llama), 0u);  // cp.async
}

}  // namespace
}  // namespace mk
