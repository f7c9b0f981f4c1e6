// Resource limits: the host and GPU memory estimates and their one-line errors, the
// MK_HOST_MEMORY_LIMIT_BYTES override, and --check-weights naming the first NaN/Inf with its
// source tensor and element (plain and GPT-2's transposed Conv1D layout).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>

#include "engine_test_util.h"
#include "model/error.h"
#include "runtime/engine.h"
#include "runtime/limits.h"

namespace mk {
namespace {

using ::testing::HasSubstr;

// Sets an environment variable for the life of the object.
struct ScopedEnv {
  std::string name;
  ScopedEnv(std::string n, const char* value) : name(std::move(n)) { setenv(name.c_str(), value, 1); }
  ~ScopedEnv() { unsetenv(name.c_str()); }
};

// A TensorSource that serves `base` but with one element of one tensor replaced.
class PoisonedSource : public TensorSource {
 public:
  PoisonedSource(const TensorSource& base, const std::string& name, size_t index, float value) : base_(base) {
    const TensorInfo* t = base.find(name);
    values_.assign(reinterpret_cast<const float*>(t->data), reinterpret_cast<const float*>(t->data) + t->numel());
    values_.at(index) = value;
    info_ = *t;
    info_.data = reinterpret_cast<const std::byte*>(values_.data());
  }
  const TensorInfo* find(std::string_view name) const override {
    return name == info_.name ? &info_ : base_.find(name);
  }
  std::vector<std::string> names() const override { return base_.names(); }
  std::string origin(std::string_view name) const override {
    return name == info_.name ? "blk.poisoned" : std::string();
  }

 private:
  const TensorSource& base_;
  std::vector<float> values_;
  TensorInfo info_;
};

OpGraph toy_graph(const ModelConfig& c, uint32_t ctx) {
  GraphOptions go;
  go.max_ctx = ctx;
  return build_graph(c, go);
}

EngineOptions toy_options(uint32_t ctx = 32) {
  EngineOptions eo;
  eo.threads = 1;
  eo.max_ctx = ctx;
  eo.device = Device::Cpu;
  return eo;
}

TEST(Limits, HostEstimateIsFp32WeightsPlusKvCache) {
  const ModelConfig c = test::toy_config(Arch::Llama);
  const OpGraph g = toy_graph(c, 32);
  size_t floats = 0;
  for (const WeightDecl& d : g.weights) floats += size_t(d.numel());
  const MemoryEstimate m = host_memory_estimate(g);
  EXPECT_EQ(m.weights, floats * 4);
  EXPECT_EQ(m.kv, size_t(c.num_layers) * 2 * c.num_kv_heads * 32 * c.head_dim * 4);
  EXPECT_EQ(m.total(), m.weights + m.kv);
  // The loaded weights are exactly what was estimated.
  test::RandomSource src(g, 1);
  auto engine = Engine::create(c, src, toy_options());
  EXPECT_EQ(engine->weights().bytes(), m.weights);
}

TEST(Limits, GpuEstimateIsAlignedBf16WeightsPlusKvCache) {
  const ModelConfig c = test::toy_config(Arch::Qwen2);
  const OpGraph g = toy_graph(c, 100);
  size_t bytes = 0;
  for (const WeightDecl& d : g.weights) bytes += (size_t(d.numel()) * 2 + 255) / 256 * 256;
  const MemoryEstimate m = gpu_memory_estimate(g);
  EXPECT_EQ(m.weights, bytes);
  EXPECT_EQ(m.kv, size_t(c.num_layers) * 2 * c.num_kv_heads * 100 * c.head_dim * 2);
}

TEST(Limits, HostCheckMessage) {
  MemoryEstimate need{size_t(3) << 30, size_t(1) << 29};  // 3 GiB + 0.5 GiB
  EXPECT_NO_THROW(check_host_memory(need, need.total(), 4096));
  try {
    check_host_memory(need, size_t(2) << 30, 4096);
    FAIL() << "no error";
  } catch (const ResourceError& e) {
    EXPECT_STREQ(e.what(),
                 "model needs 3.50 GiB of host memory, 2.00 GiB available (fp32 weights 3.00 GiB + KV cache "
                 "0.50 GiB for 4096 tokens; a smaller --ctx shrinks the cache)");
  }
  EXPECT_EQ(format_bytes(size_t(12) << 20), "12.0 MiB");
  EXPECT_EQ(format_bytes((size_t(5) << 30) / 4), "1.25 GiB");
}

TEST(Limits, GpuCheckMessage) {
  MemoryEstimate need{size_t(2000) << 20, size_t(100) << 20};
  EXPECT_NO_THROW(check_gpu_memory(need, size_t(2100) << 20, size_t(8000) << 20, 1024));
  try {
    check_gpu_memory(need, size_t(2099) << 20, size_t(8000) << 20, 1024);
    FAIL() << "no error";
  } catch (const ResourceError& e) {
    EXPECT_STREQ(e.what(),
                 "GPU out of memory: the model needs 2100 MiB (bf16 weights 2000 MiB + KV cache 100 MiB for 1024 "
                 "tokens), 2099 MiB free of 8000 MiB; a smaller --ctx or --device cpu");
  }
}

TEST(Limits, EveryGpuIsCheckedForTheRanksOnIt) {
  ScopedEnv env("MK_HOST_MEMORY_LIMIT_BYTES", "1000000000000");
  const ModelConfig c = test::toy_config(Arch::Llama);
  GraphOptions go;
  go.max_ctx = 64;
  go.tp_size = 2;
  size_t need[2];
  for (uint32_t r = 0; r < 2; ++r) {
    GraphOptions o = go;
    o.tp_rank = r;
    need[r] = gpu_memory_estimate(build_graph(c, o)).total();
  }
  const size_t big = size_t(1) << 40;
  auto check = [&](std::vector<GpuMemory> gpus, std::vector<int> rank_device) {
    check_ranks_memory(c, go, 64, gpus, rank_device);
  };
  // A GPU a rank: each holds its own rank; the one short by a byte is named.
  EXPECT_NO_THROW(check({{need[0], big}, {need[1], big}}, {0, 1}));
  EXPECT_THAT([&] { check({{need[0], big}, {need[1] - 1, big}}, {0, 1}); },
              ::testing::ThrowsMessage<ResourceError>(::testing::StartsWith("GPU 1 out of memory")));
  // Both ranks on one GPU: their sum, the GPU unnamed.
  EXPECT_NO_THROW(check({{need[0] + need[1], big}}, {0, 0}));
  EXPECT_THAT([&] { check({{need[0] + need[1] - 1, big}}, {0, 0}); },
              ::testing::ThrowsMessage<ResourceError>(::testing::StartsWith("GPU out of memory")));
  // On the CPU: the host alone.
  EXPECT_NO_THROW(check({}, {}));
}

TEST(Limits, HostMemoryLimitFromTheEnvironment) {
  {
    ScopedEnv env("MK_HOST_MEMORY_LIMIT_BYTES", "123456");
    EXPECT_EQ(host_memory_available(), std::optional<size_t>(123456));
  }
  for (const char* bad : {"12k", "-1", "abc", "99999999999999999999999"}) {
    ScopedEnv env("MK_HOST_MEMORY_LIMIT_BYTES", bad);
    EXPECT_THROW(host_memory_available(), Error) << bad;
  }
  // Without the override: /proc/meminfo's MemAvailable on Linux.
  EXPECT_GT(host_memory_available().value_or(1), 0u);
}

TEST(Limits, EngineRefusesAModelLargerThanTheLimitBeforeLoading) {
  const ModelConfig c = test::toy_config(Arch::Llama);
  const OpGraph g = toy_graph(c, 32);
  const MemoryEstimate m = host_memory_estimate(g);
  test::RandomSource src(g, 1);
  {
    ScopedEnv env("MK_HOST_MEMORY_LIMIT_BYTES", std::to_string(m.total()).c_str());
    EXPECT_NO_THROW(Engine::create(c, src, toy_options()));
  }
  ScopedEnv env("MK_HOST_MEMORY_LIMIT_BYTES", std::to_string(m.total() - 1).c_str());
  try {
    Engine::create(c, src, toy_options());
    FAIL() << "no error";
  } catch (const ResourceError& e) {
    EXPECT_THAT(e.what(), HasSubstr("of host memory, "));
    EXPECT_THAT(e.what(), HasSubstr(" available (fp32 weights "));
  }
  // A source that would fail to load is never read: the check comes first.
  test::RandomSource empty(toy_graph(test::toy_config(Arch::Qwen3), 32), 1);
  EXPECT_THROW(Engine::create(c, empty, toy_options()), ResourceError);
  EXPECT_THROW(Engine::check_memory(c, toy_options()), ResourceError);
}

// With --tp N the engine holds every rank's weights and KV cache: the check counts them all (it
// counted rank 0's alone, a quarter of what --tp 4 loads).
TEST(Limits, TensorParallelRanksAreAllCounted) {
  const ModelConfig c = test::toy_config(Arch::Llama);
  EngineOptions eo = toy_options();
  eo.tp = 2;
  MemoryEstimate all;
  for (uint32_t r = 0; r < 2; ++r) {
    GraphOptions go;
    go.max_ctx = 32;
    go.tp_size = 2;
    go.tp_rank = r;
    all += host_memory_estimate(build_graph(c, go));
  }
  // Each rank keeps the cache of its own KV heads: together, one model's cache.
  ASSERT_EQ(c.num_kv_heads % 2, 0u);
  EXPECT_EQ(all.kv, size_t(c.num_layers) * 2 * c.num_kv_heads * 32 * c.head_dim * 4);
  EXPECT_GT(all.weights, host_memory_estimate(toy_graph(c, 32)).weights);  // the embedding twice
  test::RandomSource src(toy_graph(c, 32), 1);
  {
    ScopedEnv env("MK_HOST_MEMORY_LIMIT_BYTES", std::to_string(all.total()).c_str());
    EXPECT_NO_THROW(Engine::create(c, src, eo));
  }
  ScopedEnv env("MK_HOST_MEMORY_LIMIT_BYTES", std::to_string(all.total() - 1).c_str());
  EXPECT_THROW(Engine::create(c, src, eo), ResourceError);
  EXPECT_THROW(Engine::check_memory(c, eo), ResourceError);
}

TEST(CheckWeights, NamesTheFirstNonFiniteValue) {
  const ModelConfig c = test::toy_config(Arch::Llama);
  const OpGraph g = toy_graph(c, 32);
  test::RandomSource src(g, 3);
  // The k projection is the second part of layer 1's fused QKV: rows after q's.
  const std::string k_name = "model.layers.1.self_attn.k_proj.weight";
  const size_t cols = c.hidden_size, q_rows = size_t(c.num_heads) * c.head_dim;
  const size_t src_index = 2 * cols + 5;  // row 2, column 5 of k_proj
  PoisonedSource bad(src, k_name, src_index, std::numeric_limits<float>::quiet_NaN());

  EngineOptions eo = toy_options();
  EXPECT_NO_THROW(Engine::create(c, bad, eo));  // off by default
  eo.check_weights = true;
  EXPECT_NO_THROW(Engine::create(c, src, eo));
  try {
    Engine::create(c, bad, eo);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "--check-weights: weight 1.qkv holds nan at index " +
                                         std::to_string((q_rows + 2) * cols + 5) + " (source tensor '" + k_name +
                                         "', GGUF 'blk.poisoned', element " + std::to_string(src_index) + ")");
  }
  PoisonedSource inf(src, "model.norm.weight", 7, -std::numeric_limits<float>::infinity());
  try {
    Engine::create(c, inf, eo);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("holds -inf at index 7 (source tensor 'model.norm.weight', GGUF "
                                    "'blk.poisoned', element 7)"));
  }
}

TEST(CheckWeights, MapsTransposedConv1DElements) {
  const ModelConfig c = test::toy_config(Arch::Gpt2);
  const OpGraph g = toy_graph(c, 32);
  test::RandomSource src(g, 4);
  // GPT-2 stores c_fc as [in, out]; source element (i, j) is engine row j, column i.
  const std::string name = "transformer.h.0.mlp.c_fc.weight";
  const TensorInfo* t = src.find(name);
  ASSERT_NE(t, nullptr);
  const size_t in = t->shape[0], out = t->shape[1], i = 3, j = 11;
  PoisonedSource bad(src, name, i * out + j, std::numeric_limits<float>::infinity());
  EngineOptions eo = toy_options();
  eo.check_weights = true;
  try {
    Engine::create(c, bad, eo);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("holds inf at index " + std::to_string(j * in + i) + " (source tensor '" +
                                    name + "', GGUF 'blk.poisoned', element " + std::to_string(i * out + j) + ")"));
  }
}

}  // namespace
}  // namespace mk
