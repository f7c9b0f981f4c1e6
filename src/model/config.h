// ModelConfig: what the engine needs to know about an architecture, read from a Hugging Face
// config.json (or, later, from GGUF metadata). One struct for every supported family.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "mk/isa.h"

namespace mk {

enum class Arch { Llama, Mistral, Qwen2, Qwen3, Gpt2 };

struct RopeScaling {
  enum class Type { None, Llama3, Linear } type = Type::None;
  float factor = 1.0f;
  float low_freq_factor = 1.0f;   // llama3
  float high_freq_factor = 4.0f;  // llama3
  int original_max_position_embeddings = 0;
};

struct ModelConfig {
  Arch arch = Arch::Llama;
  std::string arch_name;        // as written in "architectures", e.g. "LlamaForCausalLM"
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int max_position_embeddings = 0;

  NormKind norm = NormKind::Rms;
  float norm_eps = 1e-5f;
  Activation act = Activation::Silu;
  bool gated_mlp = true;         // gate/up/down (Llama family) vs fc/proj (GPT-2)
  bool tie_word_embeddings = false;
  bool qkv_bias = false;         // Qwen2, GPT-2
  bool o_bias = false;           // GPT-2 (and Llama with attention_bias)
  bool mlp_bias = false;         // GPT-2 (and Llama with mlp_bias)
  bool qk_norm = false;          // Qwen3: per-head RMSNorm of q and k before RoPE
  bool learned_pos = false;      // GPT-2: learned absolute position embeddings, no RoPE
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  int sliding_window = 0;        // 0: full attention (Mistral sets it)

  int bos_token_id = -1;
  std::vector<int> eos_token_ids;
  std::string torch_dtype;       // informational: weights are converted at load
};

// Parses the text of a config.json. `source` names the file in error messages.
// Throws mk::Error with one line naming the field for an unknown architecture or a missing,
// mistyped, out-of-range or contradictory field.
ModelConfig parse_config_json(std::string_view json_text, const std::string& source);

// Reads DIR/config.json.
ModelConfig load_config(const std::filesystem::path& model_dir);

const char* arch_name(Arch arch);

}  // namespace mk
