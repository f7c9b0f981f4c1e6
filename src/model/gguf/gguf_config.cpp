// ModelConfig from GGUF metadata (<arch>.* keys, tokenizer ids) and tensor shapes, including the
// recovery of llama3 rope scaling from the rope_freqs tensor that llama.cpp's converter writes.
#include <algorithm>
#include <climits>
#include <cmath>
#include <map>
#include <numbers>

#include "model/error.h"
#include "model/gguf/dequant.h"
#include "model/gguf/gguf_model.h"

namespace mk {
namespace {

[[noreturn]] void fail(const GgufFile& f, const std::string& what) {
  throw Error(f.path().string() + ": " + what);
}

int positive_int(const GgufFile& f, const std::string& key) {
  int64_t v = f.get_int(key);
  if (v <= 0 || v > INT_MAX) fail(f, "key '" + key + "' = " + std::to_string(v) + " is out of range");
  return static_cast<int>(v);
}

// llama.cpp's rope factor for one frequency under llama3 scaling (the converter's formula, which
// is also what transformers applies to the inverse frequencies).
double llama3_factor(double inv_freq, double factor, double lo, double hi, double ctx) {
  double wavelen = 2.0 * std::numbers::pi / inv_freq;
  if (wavelen < ctx / hi) return 1.0;
  if (wavelen > ctx / lo) return factor;
  double smooth = (ctx / wavelen - lo) / (hi - lo);
  return 1.0 / ((1.0 - smooth) / factor + smooth);
}

// GGUF keeps llama3 scaling only as per-frequency factors. Between the two cut-offs the
// "smooth" weight s is linear in 1/wavelength: s = x * ctx/(hi-lo) - lo/(hi-lo). Only the ratios
// ctx/lo and ctx/hi matter, so taking lo = 1 and fitting the line recovers an equivalent
// (factor, hi, ctx); the result is checked against every stored factor.
RopeScaling llama3_from_rope_freqs(const GgufFile& f, const GgufTensorInfo& t, int head_dim,
                                   double theta) {
  const int n = head_dim / 2;
  if (t.ne.size() != 1 || t.ne[0] != static_cast<uint64_t>(n))
    fail(f, "tensor 'rope_freqs.weight' should have " + std::to_string(n) + " elements");
  std::vector<float> fac(n);
  dequantize_row(t.type, t.data, fac.data(), n);
  double factor = 1.0;
  for (float v : fac) factor = std::max(factor, static_cast<double>(v));
  RopeScaling rs;
  if (factor == 1.0) return rs;

  auto inv_freq = [&](int i) { return std::pow(theta, -2.0 * i / head_dim); };
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  int m = 0;
  for (int i = 0; i < n; ++i) {
    double v = fac[i];
    if (v <= 1.0 + 1e-6 || v >= factor * (1.0 - 1e-6)) continue;
    double x = inv_freq(i) / (2.0 * std::numbers::pi);
    double s = (1.0 / v - 1.0 / factor) / (1.0 - 1.0 / factor);
    sx += x; sy += s; sxx += x * x; sxy += x * s; ++m;
  }
  double hi = 4.0;
  double ctx = static_cast<double>(
      f.get_int_or(f.get_string("general.architecture") + ".rope.scaling.original_context_length",
                   8192));
  double det = m * sxx - sx * sx;
  if (m >= 2 && det > 0) {
    double a = (m * sxy - sx * sy) / det;
    double b = (sy - a * sx) / m;
    if (b < 0 && a > 0) {
      hi = 1.0 - 1.0 / b;
      ctx = std::round(a * (hi - 1.0));
    }
  }
  for (int i = 0; i < n; ++i) {
    double want = llama3_factor(inv_freq(i), factor, 1.0, hi, ctx);
    if (std::fabs(want - fac[i]) > 1e-3 * want)
      fail(f, "tensor 'rope_freqs.weight' does not match llama3 rope scaling (element " +
                  std::to_string(i) + ")");
  }
  // The fit (or the metadata) of a hostile file can give any context, NaN included: it must be a
  // position count before it becomes an int (config.json's bound on positions, 2^24).
  if (!(ctx >= 1 && ctx <= double(1 << 24)))
    fail(f, "tensor 'rope_freqs.weight' implies an original context length of " + std::to_string(ctx) +
                ", out of range");
  rs.type = RopeScaling::Type::Llama3;
  rs.factor = static_cast<float>(factor);
  rs.low_freq_factor = 1.0f;
  rs.high_freq_factor = static_cast<float>(hi);
  rs.original_max_position_embeddings = static_cast<int>(ctx);
  return rs;
}

}  // namespace

ModelConfig gguf_model_config(const GgufFile& f) {
  const std::string arch = f.get_string("general.architecture");
  ModelConfig c;
  if (arch == "llama") {
    c.arch = Arch::Llama;
    c.arch_name = "LlamaForCausalLM";
  } else if (arch == "qwen2") {
    c.arch = Arch::Qwen2;
    c.arch_name = "Qwen2ForCausalLM";
  } else if (arch == "qwen3") {
    c.arch = Arch::Qwen3;
    c.arch_name = "Qwen3ForCausalLM";
  } else if (arch == "gpt2") {
    c.arch = Arch::Gpt2;
    c.arch_name = "GPT2LMHeadModel";
  } else {
    fail(f, "unsupported architecture '" + arch +
                "' (general.architecture; supported: llama, qwen2, qwen3, gpt2)");
  }
  auto key = [&](const char* k) { return arch + "." + k; };
  const bool gpt2 = c.arch == Arch::Gpt2;

  c.max_position_embeddings = positive_int(f, key("context_length"));
  c.hidden_size = positive_int(f, key("embedding_length"));
  c.num_layers = positive_int(f, key("block_count"));
  c.intermediate_size = positive_int(f, key("feed_forward_length"));
  c.num_heads = positive_int(f, key("attention.head_count"));
  c.num_kv_heads = f.has(key("attention.head_count_kv"))
                       ? positive_int(f, key("attention.head_count_kv")) : c.num_heads;
  if (c.num_heads % c.num_kv_heads != 0)
    fail(f, "attention.head_count " + std::to_string(c.num_heads) +
                " is not a multiple of attention.head_count_kv " + std::to_string(c.num_kv_heads));
  if (f.has(key("attention.key_length"))) {
    c.head_dim = positive_int(f, key("attention.key_length"));
  } else {
    if (c.hidden_size % c.num_heads != 0)
      fail(f, "embedding_length is not a multiple of attention.head_count");
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (f.has(key("attention.value_length")) &&
      positive_int(f, key("attention.value_length")) != c.head_dim)
    fail(f, "key '" + key("attention.value_length") + "' differs from the key length");

  if (gpt2) {
    c.norm = NormKind::Layer;
    c.norm_eps = static_cast<float>(f.get_float(key("attention.layer_norm_epsilon")));
    c.act = Activation::GeluTanh;
    c.gated_mlp = false;
    c.learned_pos = true;
  } else {
    c.norm = NormKind::Rms;
    c.norm_eps = static_cast<float>(f.get_float(key("attention.layer_norm_rms_epsilon")));
    c.act = Activation::Silu;
    c.gated_mlp = true;
    c.rope_theta = static_cast<float>(f.get_float_or(key("rope.freq_base"), 10000.0));
    if (f.has(key("rope.dimension_count")) &&
        positive_int(f, key("rope.dimension_count")) != c.head_dim)
      fail(f, "partial rotary embeddings are not supported ('" + key("rope.dimension_count") +
                  "' differs from the head dimension)");
    std::string type = f.get_string_or(key("rope.scaling.type"), "none");
    if (type == "linear" || f.has(key("rope.scale_linear"))) {
      c.rope_scaling.type = RopeScaling::Type::Linear;
      c.rope_scaling.factor = static_cast<float>(
          f.has(key("rope.scaling.factor")) ? f.get_float(key("rope.scaling.factor"))
                                            : f.get_float(key("rope.scale_linear")));
    } else if (type != "none") {
      fail(f, "unsupported rope scaling '" + type + "' (" + key("rope.scaling.type") + ")");
    } else if (const GgufTensorInfo* rf = f.find_tensor("rope_freqs.weight")) {
      c.rope_scaling = llama3_from_rope_freqs(f, *rf, c.head_dim, c.rope_theta);
    }
    c.sliding_window = static_cast<int>(f.get_int_or(key("attention.sliding_window"), 0));
  }

  const GgufTensorInfo* emb = f.find_tensor("token_embd.weight");
  if (!emb) fail(f, "missing tensor 'token_embd.weight'");
  if (emb->ne.size() != 2 || emb->ne[0] != static_cast<uint64_t>(c.hidden_size) ||
      emb->ne[1] > INT_MAX)
    fail(f, "tensor 'token_embd.weight' does not have shape [vocab, embedding_length]");
  c.vocab_size = static_cast<int>(emb->ne[1]);
  c.tie_word_embeddings = f.find_tensor("output.weight") == nullptr;

  auto present = [&](const char* name) { return f.find_tensor(name) != nullptr; };
  if (gpt2) {
    c.qkv_bias = present("blk.0.attn_qkv.bias");
    c.o_bias = present("blk.0.attn_output.bias");
    c.mlp_bias = present("blk.0.ffn_up.bias");
  } else {
    c.qkv_bias = present("blk.0.attn_q.bias");
    c.o_bias = present("blk.0.attn_output.bias");
    c.mlp_bias = present("blk.0.ffn_up.bias");
    c.qk_norm = present("blk.0.attn_q_norm.weight");
  }

  c.bos_token_id = static_cast<int>(f.get_int_or("tokenizer.ggml.bos_token_id", -1));
  for (const char* k : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                        "tokenizer.ggml.eom_token_id"}) {
    if (!f.has(k)) continue;
    int id = static_cast<int>(f.get_int(k));
    if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), id) == c.eos_token_ids.end())
      c.eos_token_ids.push_back(id);
  }

  // Informational: the most common type among the matrices, e.g. "Q4_K".
  std::map<std::string, int> counts;
  for (const GgufTensorInfo& t : f.tensors())
    if (t.ne.size() == 2) ++counts[ggml_type_name(t.type)];
  int best = 0;
  for (const auto& [name, n] : counts)
    if (n > best) best = n, c.torch_dtype = name;
  return c;
}

}  // namespace mk
