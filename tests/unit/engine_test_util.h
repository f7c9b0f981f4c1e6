// Test helpers for the engine: configs of every architecture at toy sizes, real models' dimensions,
// and a TensorSource that serves random tensors under the Hugging Face names a graph's weight
// declarations ask for.
#pragma once

#include <map>
#include <random>
#include <string>

#include "graph/graph.h"
#include "model/error.h"
#include "model/tensor_source.h"

namespace mk::test {

inline ModelConfig toy_config(Arch arch) {
  ModelConfig c;
  c.arch = arch;
  c.arch_name = arch_name(arch);
  c.vocab_size = 97;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 8;
  c.max_position_embeddings = 128;
  c.norm_eps = 1e-5f;
  switch (arch) {
    case Arch::Llama:
      c.rope_scaling = {RopeScaling::Type::Llama3, 8.0f, 1.0f, 4.0f, 16};
      c.tie_word_embeddings = true;
      break;
    case Arch::Mistral: c.sliding_window = 5; break;
    case Arch::Qwen2: c.qkv_bias = true; break;
    case Arch::Qwen3: c.qk_norm = true; c.head_dim = 12; break;
    case Arch::Gpt2:
      c.norm = NormKind::Layer;
      c.act = Activation::GeluTanh;
      c.gated_mlp = false;
      c.learned_pos = true;
      c.qkv_bias = c.o_bias = c.mlp_bias = true;
      c.tie_word_embeddings = true;
      c.num_kv_heads = c.num_heads;
      break;
  }
  return c;
}

// Serves every tensor a graph's declarations name, filled with seeded random values (transposed
// GPT-2 Conv1D layout included), so the engine loads it exactly like a real file.
class RandomSource : public TensorSource {
 public:
  RandomSource(const OpGraph& g, uint64_t seed) {
    std::mt19937 rng(static_cast<uint32_t>(seed));
    std::normal_distribution<float> dist(0.0f, 0.3f);
    for (const WeightDecl& d : g.weights) {
      if (d.kind != WeightDecl::Kind::Loaded) continue;
      const int64_t rows_total = d.shape[0];
      const int64_t parts = static_cast<int64_t>(d.parts.size());
      for (size_t k = 0; k < d.parts.size(); ++k) {
        Entry& e = entries_[d.parts[k]];
        const int64_t rows = d.name.find("qkv") != std::string::npos && parts == 3
                                 ? (k == 0 ? int64_t(g.config.num_heads) * g.config.head_dim
                                           : int64_t(g.config.num_kv_heads) * g.config.head_dim)
                                 : rows_total / parts;
        std::vector<int64_t> shape = d.shape.size() == 2 ? std::vector<int64_t>{rows, d.shape[1]}
                                                         : std::vector<int64_t>{rows};
        if (d.transpose && shape.size() == 2) std::swap(shape[0], shape[1]);
        e.values.resize(rows * (d.shape.size() == 2 ? d.shape[1] : 1));
        const bool is_norm = d.name.find("norm") != std::string::npos && d.shape.size() == 1 &&
                             d.name.find("bias") == std::string::npos;
        for (float& v : e.values) v = (is_norm ? 1.0f : 0.0f) + dist(rng);
        e.info = {d.parts[k], DType::F32, shape, reinterpret_cast<const std::byte*>(e.values.data()),
                  e.values.size() * sizeof(float)};
      }
    }
  }
  const TensorInfo* find(std::string_view name) const override {
    auto it = entries_.find(std::string(name));
    return it == entries_.end() ? nullptr : &it->second.info;
  }
  std::vector<std::string> names() const override {
    std::vector<std::string> n;
    for (auto& [k, v] : entries_) n.push_back(k);
    return n;
  }

 private:
  struct Entry {
    std::vector<float> values;
    TensorInfo info;
  };
  std::map<std::string, Entry> entries_;
};

// Real models' dimensions on toy_config's Llama (what scheduling and tiling depend on): Llama-3.2-1B;
// Qwen2.5-1.5B (hidden 1536, MLP 8960, 12 query heads of 128 over 2 KV heads); Llama-3.2-3B (hidden
// 3072, 24 heads of 128, 28 layers).
inline ModelConfig llama_3_2_1b_config() {
  ModelConfig c = toy_config(Arch::Llama);
  c.vocab_size = 128256, c.hidden_size = 2048, c.intermediate_size = 8192, c.num_layers = 16;
  c.num_heads = 32, c.num_kv_heads = 8, c.head_dim = 64, c.max_position_embeddings = 131072;
  return c;
}

inline ModelConfig qwen2_5_1_5b_config() {
  ModelConfig c = llama_3_2_1b_config();
  c.hidden_size = 1536, c.intermediate_size = 8960, c.num_heads = 12, c.num_kv_heads = 2, c.head_dim = 128;
  return c;
}

inline ModelConfig llama_3_2_3b_config() {
  ModelConfig c = llama_3_2_1b_config();
  c.hidden_size = 3072, c.num_layers = 28, c.num_heads = 24, c.head_dim = 128;
  return c;
}

// The node of `g` named `name` (e.g. "L3.down"); an Error where there is none.
inline const OpNode& node_named(const OpGraph& g, const std::string& name) {
  for (const OpNode& n : g.nodes)
    if (n.name == name) return n;
  throw Error("no node " + name);
}

// Layer `layer`'s AttnPartial node of `g`.
inline const OpNode& attention_node(const OpGraph& g, int layer) {
  return node_named(g, "L" + std::to_string(layer) + ".attn_partial");
}

}  // namespace mk::test
