// Weight declarations of the Llama family (Llama 2/3.x, Mistral, Qwen2, Qwen3): engine weights in
// terms of Hugging Face tensor names. Q, K and V are concatenated into one matrix per layer.
#include <string>

#include "graph/graph.h"

namespace mk {

void declare_llama_weights(const ModelConfig& c, OpGraph& g) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, D = c.head_dim, V = c.vocab_size;
  const int64_t q_rows = int64_t(c.num_heads) * D, kv_rows = int64_t(c.num_kv_heads) * D;
  auto loaded = [&](std::string name, std::vector<int64_t> shape, std::vector<std::string> parts) {
    g.add_weight({std::move(name), std::move(shape), WeightDecl::Kind::Loaded, std::move(parts), false});
  };
  loaded("embed", {V, H}, {"model.embed_tokens.weight"});
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string L = std::to_string(l) + ".", hf = "model.layers." + std::to_string(l) + ".";
    const std::string attn = hf + "self_attn.", mlp = hf + "mlp.";
    loaded(L + "attn_norm", {H}, {hf + "input_layernorm.weight"});
    loaded(L + "qkv", {q_rows + 2 * kv_rows, H},
           {attn + "q_proj.weight", attn + "k_proj.weight", attn + "v_proj.weight"});
    if (c.qkv_bias)
      loaded(L + "qkv_bias", {q_rows + 2 * kv_rows},
             {attn + "q_proj.bias", attn + "k_proj.bias", attn + "v_proj.bias"});
    if (c.qk_norm) {
      loaded(L + "q_norm", {D}, {attn + "q_norm.weight"});
      loaded(L + "k_norm", {D}, {attn + "k_norm.weight"});
    }
    loaded(L + "o", {H, q_rows}, {attn + "o_proj.weight"});
    if (c.o_bias) loaded(L + "o_bias", {H}, {attn + "o_proj.bias"});
    loaded(L + "mlp_norm", {H}, {hf + "post_attention_layernorm.weight"});
    loaded(L + "gate", {I, H}, {mlp + "gate_proj.weight"});
    loaded(L + "up", {I, H}, {mlp + "up_proj.weight"});
    loaded(L + "down", {H, I}, {mlp + "down_proj.weight"});
    if (c.mlp_bias) {
      loaded(L + "gate_bias", {I}, {mlp + "gate_proj.bias"});
      loaded(L + "up_bias", {I}, {mlp + "up_proj.bias"});
      loaded(L + "down_bias", {H}, {mlp + "down_proj.bias"});
    }
  }
  loaded("final_norm", {H}, {"model.norm.weight"});
  if (!c.tie_word_embeddings) loaded("lm_head", {V, H}, {"lm_head.weight"});
}

}  // namespace mk
