// Tests of config.json parsing (config.cpp): configs written by transformers 5.24 for all five
// architectures, the classic rope_scaling form, Llama-3.2-1B, and one-line errors for bad input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/error.h"

namespace mk {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Written by `XForCausalLM(XConfig(small dims)).save_pretrained(d)` with transformers 5.24.0
// (Llama with llama3 rope_parameters and tied embeddings).
constexpr const char* kLlama = R"({"architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 1, "dtype": "bfloat16", "eos_token_id": 2, "head_dim": 16, "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 128, "max_position_embeddings": 256, "mlp_bias": false, "model_type": "llama", "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "pad_token_id": null, "pretraining_tp": 1, "rms_norm_eps": 1e-06, "rope_parameters": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0, "original_max_position_embeddings": 8192, "rope_theta": 500000.0, "rope_type": "llama3"}, "tie_word_embeddings": true, "transformers_version": "5.24.0", "use_cache": true, "vocab_size": 256})";
constexpr const char* kMistral = R"({"architectures": ["MistralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "dtype": "bfloat16", "eos_token_id": 2, "head_dim": 16, "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 128, "max_position_embeddings": 256, "model_type": "mistral", "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "pad_token_id": null, "rms_norm_eps": 1e-06, "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"}, "sliding_window": 4096, "tie_word_embeddings": false, "transformers_version": "5.24.0", "use_cache": true, "vocab_size": 256})";
constexpr const char* kQwen2 = R"({"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": null, "dtype": "bfloat16", "eos_token_id": null, "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 128, "layer_types": ["full_attention", "full_attention"], "max_position_embeddings": 256, "max_window_layers": 28, "model_type": "qwen2", "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "pad_token_id": null, "rms_norm_eps": 1e-06, "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"}, "sliding_window": null, "tie_word_embeddings": false, "transformers_version": "5.24.0", "use_cache": true, "use_sliding_window": false, "vocab_size": 256})";
constexpr const char* kQwen3 = R"({"architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": null, "dtype": "bfloat16", "eos_token_id": null, "head_dim": 16, "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 128, "layer_types": ["full_attention", "full_attention"], "max_position_embeddings": 256, "max_window_layers": 28, "model_type": "qwen3", "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "pad_token_id": null, "rms_norm_eps": 1e-06, "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"}, "sliding_window": null, "tie_word_embeddings": false, "transformers_version": "5.24.0", "use_cache": true, "use_sliding_window": false, "vocab_size": 256})";
constexpr const char* kGpt2 = R"({"activation_function": "gelu_new", "add_cross_attention": false, "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1, "bos_token_id": 50256, "dtype": "bfloat16", "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_inner": null, "n_layer": 2, "n_positions": 128, "pad_token_id": null, "reorder_and_upcast_attn": false, "resid_pdrop": 0.1, "scale_attn_by_inverse_layer_idx": false, "scale_attn_weights": true, "summary_activation": null, "summary_first_dropout": 0.1, "summary_proj_to_labels": true, "summary_type": "cls_index", "summary_use_proj": true, "tie_word_embeddings": true, "transformers_version": "5.24.0", "use_cache": true, "vocab_size": 256})";
// `LlamaConfig().save_pretrained(d)`: a bare config has model_type but no "architectures".
constexpr const char* kLlamaDefault = R"({"attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2, "head_dim": 128, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 11008, "max_position_embeddings": 2048, "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32, "pad_token_id": null, "pretraining_tp": 1, "rms_norm_eps": 1e-06, "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"}, "tie_word_embeddings": false, "transformers_version": "5.24.0", "use_cache": true, "vocab_size": 32000})";
// openai-community/gpt2 as published: no n_inner, no tie_word_embeddings, an old n_ctx.
constexpr const char* kGpt2Hub = R"({"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1, "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024, "resid_pdrop": 0.1, "summary_activation": null, "summary_first_dropout": 0.1, "summary_proj_to_labels": true, "summary_type": "cls_index", "summary_use_proj": true, "vocab_size": 50257})";

constexpr const char* kSrc = "m/config.json";

ModelConfig parse(const std::string& text) { return parse_config_json(text, kSrc); }

std::string edit(const char* base, const std::function<void(json&)>& change) {
  json j = json::parse(base);
  change(j);
  return j.dump();
}

// The error text for `text`, checked to be one line naming the source.
std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_THAT(msg, StartsWith(std::string(kSrc) + ": "));
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    return msg;
  }
  ADD_FAILURE() << "no error for " << text;
  return "";
}

std::string error_of(const char* base, const std::function<void(json&)>& change) {
  return error_of(edit(base, change));
}

TEST(Config, Llama) {
  ModelConfig c = parse(kLlama);
  EXPECT_EQ(c.arch, Arch::Llama);
  EXPECT_EQ(c.arch_name, "LlamaForCausalLM");
  EXPECT_EQ(c.vocab_size, 256);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 128);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.max_position_embeddings, 256);
  EXPECT_EQ(c.norm, NormKind::Rms);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-6f);
  EXPECT_EQ(c.act, Activation::Silu);
  EXPECT_TRUE(c.gated_mlp);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.qkv_bias || c.o_bias || c.mlp_bias || c.qk_norm || c.learned_pos);
  EXPECT_EQ(c.rope_theta, 500000.0f);
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::Llama3);
  EXPECT_EQ(c.rope_scaling.factor, 32.0f);
  EXPECT_EQ(c.rope_scaling.low_freq_factor, 1.0f);
  EXPECT_EQ(c.rope_scaling.high_freq_factor, 4.0f);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.sliding_window, 0);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<int>{2});
  EXPECT_EQ(c.torch_dtype, "bfloat16");
}

TEST(Config, Mistral) {
  ModelConfig c = parse(kMistral);
  EXPECT_EQ(c.arch, Arch::Mistral);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_EQ(c.rope_theta, 10000.0f);
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::None);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(parse(edit(kMistral, [](json& j) { j["sliding_window"] = nullptr; })).sliding_window, 0);
  // MistralForCausalLM builds no biases, whatever the config carries.
  ModelConfig b = parse(edit(kMistral, [](json& j) { j["attention_bias"] = true; }));
  EXPECT_FALSE(b.qkv_bias || b.o_bias);
}

TEST(Config, Qwen2) {
  ModelConfig c = parse(kQwen2);
  EXPECT_EQ(c.arch, Arch::Qwen2);
  EXPECT_EQ(c.head_dim, 16);  // hidden / heads: no head_dim in the file
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias || c.mlp_bias || c.qk_norm);
  EXPECT_EQ(c.sliding_window, 0);
  EXPECT_EQ(c.bos_token_id, -1);
  EXPECT_TRUE(c.eos_token_ids.empty());
}

TEST(Config, Qwen3) {
  ModelConfig c = parse(kQwen3);
  EXPECT_EQ(c.arch, Arch::Qwen3);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.qkv_bias || c.o_bias);
  ModelConfig b = parse(edit(kQwen3, [](json& j) { j["attention_bias"] = true; }));
  EXPECT_TRUE(b.qkv_bias && b.o_bias);  // Qwen3Attention gives o_proj the same bias flag
}

TEST(Config, QwenSlidingWindowRejected) {
  for (const char* base : {kQwen2, kQwen3}) {
    EXPECT_THAT(error_of(base, [](json& j) { j["use_sliding_window"] = true; }),
                HasSubstr("sliding-window layers of Qwen2/Qwen3 are not supported"));
    EXPECT_THAT(error_of(base, [](json& j) { j["layer_types"][1] = "sliding_attention"; }),
                HasSubstr("sliding-window layers of Qwen2/Qwen3 are not supported"));
  }
}

TEST(Config, Gpt2) {
  ModelConfig c = parse(kGpt2);
  EXPECT_EQ(c.arch, Arch::Gpt2);
  EXPECT_EQ(c.arch_name, "GPT2LMHeadModel");
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 256);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.max_position_embeddings, 128);
  EXPECT_EQ(c.norm, NormKind::Layer);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
  EXPECT_EQ(c.act, Activation::GeluTanh);
  EXPECT_FALSE(c.gated_mlp);
  EXPECT_TRUE(c.learned_pos && c.qkv_bias && c.o_bias && c.mlp_bias && c.tie_word_embeddings);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.bos_token_id, 50256);
  EXPECT_EQ(c.eos_token_ids, std::vector<int>{50256});

  EXPECT_EQ(parse(edit(kGpt2, [](json& j) { j["n_inner"] = 100; })).intermediate_size, 100);
  EXPECT_EQ(parse(edit(kGpt2, [](json& j) { j["activation_function"] = "gelu_pytorch_tanh"; })).act,
            Activation::GeluTanh);
  EXPECT_THAT(error_of(kGpt2, [](json& j) { j["activation_function"] = "relu"; }),
              HasSubstr("unsupported activation_function 'relu' (supported: gelu_new, gelu_pytorch_tanh)"));
  EXPECT_THAT(error_of(kGpt2, [](json& j) { j["scale_attn_by_inverse_layer_idx"] = true; }),
              HasSubstr("scale_attn_by_inverse_layer_idx"));
  EXPECT_THAT(error_of(kGpt2, [](json& j) { j["n_head"] = 5; }),
              HasSubstr("n_embd (64) is not a multiple of n_head (5)"));
}

TEST(Config, Gpt2AsPublished) {
  ModelConfig c = parse(kGpt2Hub);
  EXPECT_EQ(c.hidden_size, 768);
  EXPECT_EQ(c.intermediate_size, 3072);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.max_position_embeddings, 1024);
  EXPECT_EQ(c.vocab_size, 50257);
  EXPECT_TRUE(c.tie_word_embeddings);
  ModelConfig ids = parse(edit(kGpt2Hub, [](json& j) { j.erase("bos_token_id"); j.erase("eos_token_id"); }));
  EXPECT_EQ(ids.bos_token_id, 50256);  // transformers' GPT2Config default
  EXPECT_EQ(ids.eos_token_ids, std::vector<int>{50256});
}

TEST(Config, ModelTypeWithoutArchitectures) {
  ModelConfig c = parse(kLlamaDefault);
  EXPECT_EQ(c.arch, Arch::Llama);
  EXPECT_EQ(c.arch_name, "LlamaForCausalLM");
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.num_kv_heads, 32);
  EXPECT_EQ(c.torch_dtype, "");
  EXPECT_EQ(parse(edit(kGpt2, [](json& j) { j.erase("architectures"); })).arch, Arch::Gpt2);
  EXPECT_THAT(error_of(kLlamaDefault, [](json& j) { j["model_type"] = "gemma"; }),
              HasSubstr("unsupported model_type 'gemma' (supported: llama, mistral, qwen2, qwen3, gpt2)"));
  EXPECT_EQ(error_of(kLlamaDefault, [](json& j) { j.erase("model_type"); }),
            "m/config.json: missing required field 'architectures' (and no 'model_type')");
}

TEST(Config, Llama32_1B) {
  ModelConfig c = load_config(MK_TEST_DATA_DIR "/llama-3.2-1b");
  EXPECT_EQ(c.arch, Arch::Llama);
  EXPECT_EQ(c.hidden_size, 2048);
  EXPECT_EQ(c.intermediate_size, 8192);
  EXPECT_EQ(c.num_layers, 16);
  EXPECT_EQ(c.num_heads, 32);
  EXPECT_EQ(c.num_kv_heads, 8);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
  EXPECT_EQ(c.rope_theta, 500000.0f);
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::Llama3);
  EXPECT_EQ(c.rope_scaling.factor, 32.0f);
  EXPECT_EQ(c.rope_scaling.low_freq_factor, 1.0f);
  EXPECT_EQ(c.rope_scaling.high_freq_factor, 4.0f);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_id, 128000);
  EXPECT_EQ(c.eos_token_ids, std::vector<int>{128001});
  EXPECT_EQ(c.torch_dtype, "bfloat16");
}

TEST(Config, ClassicRopeForm) {
  auto classic = [](json rope_scaling) {
    return edit(kLlama, [&](json& j) {
      j.erase("rope_parameters");
      j["rope_theta"] = 250000;  // an integer, as some hub configs write it
      j["rope_scaling"] = rope_scaling;
    });
  };
  ModelConfig none = parse(classic(nullptr));
  EXPECT_EQ(none.rope_theta, 250000.0f);
  EXPECT_EQ(none.rope_scaling.type, RopeScaling::Type::None);
  ModelConfig lin = parse(classic({{"type", "linear"}, {"factor", 2.0}}));
  EXPECT_EQ(lin.rope_scaling.type, RopeScaling::Type::Linear);
  EXPECT_EQ(lin.rope_scaling.factor, 2.0f);
  EXPECT_EQ(parse(edit(kLlama, [](json& j) { j.erase("rope_parameters"); })).rope_theta, 10000.0f);
  EXPECT_THAT(error_of(classic({{"type", "dynamic"}, {"factor", 2.0}})),
              HasSubstr("unsupported rope type 'dynamic' in 'rope_scaling' (supported: default, linear, llama3)"));
}

TEST(Config, RopeErrors) {
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["rope_parameters"]["rope_type"] = "yarn"; }),
              HasSubstr("unsupported rope type 'yarn' in 'rope_parameters'"));
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["rope_parameters"]["factor"] = 0; }),
              HasSubstr("field 'rope_parameters.factor' = 0 must be positive and finite"));
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["rope_parameters"]["factor"] = -2.0; }),
              HasSubstr("'rope_parameters.factor'"));
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["rope_parameters"].erase("low_freq_factor"); }),
              HasSubstr("missing required field 'rope_parameters.low_freq_factor'"));
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["rope_parameters"]["high_freq_factor"] = 1.0; }),
              HasSubstr("'rope_parameters.high_freq_factor' must be greater than low_freq_factor"));
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["rope_parameters"]["rope_theta"] = -1; }),
              HasSubstr("'rope_parameters.rope_theta'"));
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["rope_parameters"] = "llama3"; }),
              HasSubstr("field 'rope_parameters' must be an object, got string"));
}

TEST(Config, UnknownArchitecture) {
  EXPECT_EQ(error_of(kLlama, [](json& j) { j["architectures"] = {"GemmaForCausalLM"}; }),
            "m/config.json: unsupported architecture 'GemmaForCausalLM' (supported: LlamaForCausalLM, "
            "MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, GPT2LMHeadModel)");
  // The base model without an LM head is not a supported class either.
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["architectures"] = {"LlamaModel"}; }),
              HasSubstr("unsupported architecture 'LlamaModel'"));
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["architectures"] = "LlamaForCausalLM"; }),
              HasSubstr("field 'architectures' must be a non-empty array of strings"));
}

TEST(Config, MissingAndMistypedFields) {
  EXPECT_EQ(error_of(kLlama, [](json& j) { j.erase("hidden_size"); }),
            "m/config.json: missing required field 'hidden_size'");
  EXPECT_EQ(error_of(kLlama, [](json& j) { j["hidden_size"] = nullptr; }),
            "m/config.json: missing required field 'hidden_size'");
  EXPECT_THAT(error_of(kGpt2, [](json& j) { j.erase("n_layer"); }), HasSubstr("missing required field 'n_layer'"));
  EXPECT_THAT(error_of(kLlama, [](json& j) { j.erase("rms_norm_eps"); }),
              HasSubstr("missing required field 'rms_norm_eps'"));
  EXPECT_EQ(error_of(kLlama, [](json& j) { j["hidden_size"] = "64"; }),
            "m/config.json: field 'hidden_size' must be an integer, got string");
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["head_dim"] = 16.5; }),
              HasSubstr("field 'head_dim' must be an integer, got number"));
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["tie_word_embeddings"] = 1; }),
              HasSubstr("field 'tie_word_embeddings' must be a boolean, got number"));
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["rms_norm_eps"] = "1e-6"; }),
              HasSubstr("field 'rms_norm_eps' must be a number, got string"));
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["hidden_act"] = 3; }),
              HasSubstr("field 'hidden_act' must be a string, got number"));
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["eos_token_id"] = {2, "x"}; }),
              HasSubstr("field 'eos_token_id' must be an integer, got string"));
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["eos_token_id"] = -1; }),
              HasSubstr("field 'eos_token_id' = -1 is not a valid token id"));
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["dtype"] = 16; }), HasSubstr("field 'dtype' must be a string"));
}

TEST(Config, Activations) {
  EXPECT_EQ(parse(edit(kLlama, [](json& j) { j["hidden_act"] = "gelu_pytorch_tanh"; })).act, Activation::GeluTanh);
  EXPECT_EQ(parse(edit(kLlama, [](json& j) { j.erase("hidden_act"); })).act, Activation::Silu);
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["hidden_act"] = "gelu"; }),
              HasSubstr("unsupported hidden_act 'gelu' (supported: silu, gelu_pytorch_tanh)"));
}

TEST(Config, EosList) {
  ModelConfig c = parse(edit(kLlama, [](json& j) { j["eos_token_id"] = {128001, 128008, 128009}; }));
  EXPECT_EQ(c.eos_token_ids, (std::vector<int>{128001, 128008, 128009}));
  EXPECT_EQ(parse(edit(kLlama, [](json& j) { j["torch_dtype"] = "float16"; j.erase("dtype"); })).torch_dtype,
            "float16");
}

TEST(Config, ContradictoryHeads) {
  EXPECT_EQ(error_of(kLlama, [](json& j) { j["num_key_value_heads"] = 3; }),
            "m/config.json: num_attention_heads (4) is not a multiple of num_key_value_heads (3)");
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["num_key_value_heads"] = 8; }),
              HasSubstr("num_attention_heads (4) is not a multiple of num_key_value_heads (8)"));
  EXPECT_EQ(error_of(kQwen2, [](json& j) { j["num_attention_heads"] = 6; j["num_key_value_heads"] = 6; }),
            "m/config.json: hidden_size (64) is not a multiple of num_attention_heads (6)");
  // With an explicit head_dim, hidden need not divide (Qwen3 and Mistral Nemo do this).
  ModelConfig c = parse(edit(kQwen3, [](json& j) { j["num_attention_heads"] = 6; j["num_key_value_heads"] = 2; }));
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(parse(edit(kLlama, [](json& j) { j["head_dim"] = nullptr; })).head_dim, 16);
  EXPECT_EQ(parse(edit(kLlama, [](json& j) { j.erase("num_key_value_heads"); })).num_kv_heads, 4);
  EXPECT_EQ(error_of(kLlama, [](json& j) { j["head_dim"] = 15; }),
            "m/config.json: head_dim 15 must be even for RoPE");
  EXPECT_THAT(error_of(kQwen2, [](json& j) { j["hidden_size"] = 60; j["num_attention_heads"] = 4; }),
              HasSubstr("head_dim 15 must be even for RoPE"));
}

TEST(Config, DimensionRanges) {
  EXPECT_EQ(error_of(kLlama, [](json& j) { j["hidden_size"] = 0; }),
            "m/config.json: field 'hidden_size' = 0 must be positive");
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["num_hidden_layers"] = -2; }),
              HasSubstr("field 'num_hidden_layers' = -2 must be positive"));
  EXPECT_EQ(error_of(kLlama, [](json& j) { j["hidden_size"] = 1 << 18; }),
            "m/config.json: field 'hidden_size' = 262144 is out of range (max 131072)");
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["intermediate_size"] = 1 << 18; }),
              HasSubstr("field 'intermediate_size' = 262144 is out of range"));
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["vocab_size"] = (1 << 24) + 1; }),
              HasSubstr("field 'vocab_size' = 16777217 is out of range"));
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["num_hidden_layers"] = 4097; }),
              HasSubstr("field 'num_hidden_layers' = 4097 is out of range"));
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["num_attention_heads"] = 8192; }),
              HasSubstr("field 'num_attention_heads' = 8192 is out of range"));
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["head_dim"] = 2048; }), HasSubstr("field 'head_dim' = 2048 is out of range"));
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["max_position_embeddings"] = int64_t{1} << 40; }),
              HasSubstr("field 'max_position_embeddings' = 1099511627776 is out of range"));
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["vocab_size"] = UINT64_MAX; }),
              HasSubstr("field 'vocab_size' is out of range"));
  EXPECT_THAT(error_of(R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 1e30})"),
              HasSubstr("field 'vocab_size' must be an integer, got number"));
  EXPECT_THAT(error_of(kGpt2, [](json& j) { j["n_embd"] = 1 << 16; j["n_head"] = 64; }),
              HasSubstr("4 * n_embd (262144) is out of range"));
  EXPECT_THAT(error_of(kMistral, [](json& j) { j["sliding_window"] = -1; }),
              HasSubstr("field 'sliding_window' = -1 must not be negative"));
}

TEST(Config, Epsilon) {
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["rms_norm_eps"] = 0; }),
              HasSubstr("field 'rms_norm_eps' = 0 must be positive and finite"));
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["rms_norm_eps"] = -1e-6; }), HasSubstr("'rms_norm_eps'"));
  // Underflows to 0 as a float.
  EXPECT_THAT(error_of(kLlama, [](json& j) { j["rms_norm_eps"] = 1e-300; }), HasSubstr("'rms_norm_eps'"));
  // Overflows to inf as a float.
  EXPECT_THAT(error_of(kGpt2, [](json& j) { j["layer_norm_epsilon"] = 1e300; }), HasSubstr("'layer_norm_epsilon'"));
}

TEST(Config, InvalidJson) {
  std::string msg = error_of("{\"architectures\": [\"LlamaForCausalLM\"],\n \"hidden_size\": 64,, }");
  EXPECT_THAT(msg, HasSubstr("m/config.json: invalid JSON: "));
  EXPECT_THAT(msg, HasSubstr("line 2, column 20"));
  EXPECT_THAT(error_of(""), HasSubstr("invalid JSON"));
  EXPECT_THAT(error_of("{\"x\": 1e999}"), HasSubstr("invalid JSON"));
  EXPECT_THAT(error_of("{\"x\": NaN}"), HasSubstr("invalid JSON"));
  EXPECT_THAT(error_of("{\"x\": \"\xff\"}"), HasSubstr("invalid JSON"));
  EXPECT_EQ(error_of("[1, 2]"), "m/config.json: not a JSON object");
  EXPECT_EQ(error_of("{}"), "m/config.json: missing required field 'architectures' (and no 'model_type')");
}

TEST(Config, NamesFromTheFileAreEscaped) {
  std::string msg = error_of(kLlama, [](json& j) { j["architectures"] = {"Evil\nName"}; });
  EXPECT_THAT(msg, HasSubstr("'Evil\\x0aName'"));
}

TEST(Config, LoadConfigMissingFile) {
  try {
    load_config("/nonexistent/model");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/model/config.json: no such file");
  }
}

TEST(Config, ArchNames) {
  EXPECT_STREQ(arch_name(Arch::Llama), "llama");
  EXPECT_STREQ(arch_name(Arch::Mistral), "mistral");
  EXPECT_STREQ(arch_name(Arch::Qwen2), "qwen2");
  EXPECT_STREQ(arch_name(Arch::Qwen3), "qwen3");
  EXPECT_STREQ(arch_name(Arch::Gpt2), "gpt2");
}

}  // namespace
}  // namespace mk
