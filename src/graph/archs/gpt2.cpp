// Weight declarations of GPT-2: Conv1D weights are stored [in, out] and get transposed to the
// engine's [out, in]; c_attn is already the fused Q/K/V matrix. The LM head is always tied.
#include <string>

#include "graph/graph.h"

namespace mk {

void declare_gpt2_weights(const ModelConfig& c, OpGraph& g) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  auto add = [&](std::string name, std::vector<int64_t> shape, std::string part, bool transpose = false) {
    g.add_weight({std::move(name), std::move(shape), WeightDecl::Kind::Loaded, {std::move(part)}, transpose});
  };
  add("embed", {V, H}, "transformer.wte.weight");
  add("pos_embed", {c.max_position_embeddings, H}, "transformer.wpe.weight");
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string L = std::to_string(l) + ".", hf = "transformer.h." + std::to_string(l) + ".";
    add(L + "attn_norm", {H}, hf + "ln_1.weight");
    add(L + "attn_norm_bias", {H}, hf + "ln_1.bias");
    add(L + "qkv", {3 * H, H}, hf + "attn.c_attn.weight", true);
    add(L + "qkv_bias", {3 * H}, hf + "attn.c_attn.bias");
    add(L + "o", {H, H}, hf + "attn.c_proj.weight", true);
    add(L + "o_bias", {H}, hf + "attn.c_proj.bias");
    add(L + "mlp_norm", {H}, hf + "ln_2.weight");
    add(L + "mlp_norm_bias", {H}, hf + "ln_2.bias");
    add(L + "up", {I, H}, hf + "mlp.c_fc.weight", true);
    add(L + "up_bias", {I}, hf + "mlp.c_fc.bias");
    add(L + "down", {H, I}, hf + "mlp.c_proj.weight", true);
    add(L + "down_bias", {H}, hf + "mlp.c_proj.bias");
  }
  add("final_norm", {H}, "transformer.ln_f.weight");
  add("final_norm_bias", {H}, "transformer.ln_f.bias");
}

}  // namespace mk
