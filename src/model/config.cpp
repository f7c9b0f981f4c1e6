// config.json -> ModelConfig for the supported Hugging Face architectures (Llama, Mistral, Qwen2,
// Qwen3, GPT-2), with the validation that keeps hostile or contradictory configs out of the engine.
#include "model/config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>

#include "model/error.h"

namespace mk {
namespace {

using json = nlohmann::json;


struct ArchEntry {
  const char* class_name;
  const char* model_type;
  Arch arch;
};
constexpr ArchEntry kArchs[] = {
    {"LlamaForCausalLM", "llama", Arch::Llama},
    {"MistralForCausalLM", "mistral", Arch::Mistral},
    {"Qwen2ForCausalLM", "qwen2", Arch::Qwen2},
    {"Qwen3ForCausalLM", "qwen3", Arch::Qwen3},
    {"GPT2LMHeadModel", "gpt2", Arch::Gpt2},
};

// Reads fields of one JSON object; every error names the source and the dotted field path.
class Fields {
 public:
  Fields(const json& obj, const std::string& source, std::string prefix = "")
      : obj_(obj), source_(source), prefix_(std::move(prefix)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw Error(source_ + ": field '" + prefix_ + field + "' " + what);
  }

  const std::string& source() const { return source_; }
  bool has(const char* field) const { return obj_.contains(field); }

  // Absent and null both mean "use the default", as transformers treats them.
  const json* get(const char* field) const {
    auto it = obj_.find(field);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  const json& need(const char* field) const {
    const json* v = get(field);
    if (!v) throw Error(source_ + ": missing required field '" + prefix_ + field + "'");
    return *v;
  }

  int64_t as_int(const char* field, const json& v) const {
    if (v.is_number_unsigned()) {
      if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(field, "is out of range");
      return static_cast<int64_t>(v.get<uint64_t>());
    }
    if (!v.is_number_integer()) fail(field, std::string("must be an integer, got ") + v.type_name());
    return v.get<int64_t>();
  }
  // A positive integer no larger than `max`: every dimension goes through this before any
  // arithmetic on it, so the products the engine computes later cannot overflow.
  int dim(const char* field, const json& v, int64_t max) const {
    int64_t x = as_int(field, v);
    if (x <= 0) fail(field, "= " + std::to_string(x) + " must be positive");
    if (x > max) fail(field, "= " + std::to_string(x) + " is out of range (max " + std::to_string(max) + ")");
    return static_cast<int>(x);
  }
  int dim(const char* field, int64_t max) const { return dim(field, need(field), max); }
  int dim_or(const char* field, int64_t max, int def) const {
    const json* v = get(field);
    return v ? dim(field, *v, max) : def;
  }

  float positive_float(const char* field, const json& v) const {
    if (!v.is_number()) fail(field, std::string("must be a number, got ") + v.type_name());
    double d = v.get<double>();
    // Range-checked as a double first: narrowing an out-of-range double to float is undefined.
    if (!(d > 0.0) || d > std::numeric_limits<float>::max() || !(static_cast<float>(d) > 0.0f))
      fail(field, "= " + v.dump() + " must be positive and finite");
    return static_cast<float>(d);
  }
  float positive_float(const char* field) const { return positive_float(field, need(field)); }
  float positive_float_or(const char* field, float def) const {
    const json* v = get(field);
    return v ? positive_float(field, *v) : def;
  }

  bool boolean_or(const char* field, bool def) const {
    const json* v = get(field);
    if (!v) return def;
    if (!v->is_boolean()) fail(field, std::string("must be a boolean, got ") + v->type_name());
    return v->get<bool>();
  }
  std::string string_or(const char* field, const std::string& def) const {
    const json* v = get(field);
    if (!v) return def;
    if (!v->is_string()) fail(field, std::string("must be a string, got ") + v->type_name());
    return v->get<std::string>();
  }
  int token_id(const char* field, const json& v) const {
    int64_t x = as_int(field, v);
    if (x < 0 || x > std::numeric_limits<int>::max()) fail(field, "= " + std::to_string(x) + " is not a valid token id");
    return static_cast<int>(x);
  }

 private:
  const json& obj_;
  const std::string& source_;
  std::string prefix_;
};

constexpr int64_t kMaxHidden = int64_t{1} << 17;
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxHeads = 4096;
constexpr int64_t kMaxHeadDim = 1024;
constexpr int64_t kMaxPositions = int64_t{1} << 24;

// GPT-2 configs may omit the ids; transformers then uses 50256 for both.
void read_token_ids(const Fields& f, ModelConfig& c, int default_id) {
  if (const json* v = f.get("bos_token_id")) {
    c.bos_token_id = f.token_id("bos_token_id", *v);
  } else if (!f.has("bos_token_id")) {
    c.bos_token_id = default_id;
  }
  if (const json* v = f.get("eos_token_id")) {
    if (v->is_array()) {
      for (const json& e : *v) c.eos_token_ids.push_back(f.token_id("eos_token_id", e));
    } else {
      c.eos_token_ids.push_back(f.token_id("eos_token_id", *v));
    }
  } else if (!f.has("eos_token_id") && default_id >= 0) {
    c.eos_token_ids.push_back(default_id);
  }
}

// transformers 5.x writes `rope_parameters` (theta inside); older files write top-level
// `rope_theta` and `rope_scaling` (type under "type" or "rope_type"). Both are accepted, the new
// form taking precedence, as transformers itself does.
void read_rope(const Fields& f, ModelConfig& c) {
  std::string group = "rope_parameters";
  const json* params = f.get("rope_parameters");
  if (!params) {
    group = "rope_scaling";
    params = f.get("rope_scaling");
  }
  c.rope_theta = f.positive_float_or("rope_theta", 10000.0f);
  if (!params) return;
  if (!params->is_object()) f.fail(group, std::string("must be an object, got ") + params->type_name());
  Fields p(*params, f.source(), group + ".");
  c.rope_theta = p.positive_float_or("rope_theta", c.rope_theta);
  std::string type = p.string_or("rope_type", "");
  if (type.empty()) type = p.string_or("type", "default");
  RopeScaling& r = c.rope_scaling;
  if (type == "default") {
    r.type = RopeScaling::Type::None;
  } else if (type == "linear") {
    r.type = RopeScaling::Type::Linear;
    r.factor = p.positive_float("factor");
  } else if (type == "llama3") {
    r.type = RopeScaling::Type::Llama3;
    r.factor = p.positive_float("factor");
    r.low_freq_factor = p.positive_float("low_freq_factor");
    r.high_freq_factor = p.positive_float("high_freq_factor");
    r.original_max_position_embeddings = p.dim("original_max_position_embeddings", kMaxPositions);
    // The llama3 formula interpolates over (high - low); equal factors would divide by zero.
    if (!(r.high_freq_factor > r.low_freq_factor))
      p.fail("high_freq_factor", "must be greater than low_freq_factor");
  } else {
    throw Error(f.source() + ": unsupported rope type " + quote(type) + " in '" + group +
                "' (supported: default, linear, llama3)");
  }
}

Activation read_act(const Fields& f, const char* field, const std::string& def,
                    std::initializer_list<std::pair<const char*, Activation>> known) {
  std::string name = f.string_or(field, def);
  std::string list;
  for (const auto& [n, a] : known) {
    if (name == n) return a;
    list += (list.empty() ? "" : ", ") + std::string(n);
  }
  throw Error(f.source() + ": unsupported " + field + " " + quote(name) + " (supported: " + list + ")");
}

void check_heads(const Fields& f, ModelConfig& c, const char* heads_field, const char* kv_field,
                 const char* hidden_field, const json* head_dim) {
  if (head_dim) {
    c.head_dim = f.dim("head_dim", *head_dim, kMaxHeadDim);
  } else {
    if (c.hidden_size % c.num_heads != 0)
      throw Error(f.source() + ": " + hidden_field + " (" + std::to_string(c.hidden_size) +
                  ") is not a multiple of " + heads_field + " (" + std::to_string(c.num_heads) + ")");
    c.head_dim = c.hidden_size / c.num_heads;
    if (c.head_dim > kMaxHeadDim)
      throw Error(f.source() + ": head_dim " + std::to_string(c.head_dim) + " (" + hidden_field + " / " +
                  heads_field + ") is out of range (max " + std::to_string(kMaxHeadDim) + ")");
  }
  if (c.num_heads % c.num_kv_heads != 0)
    throw Error(f.source() + ": " + heads_field + " (" + std::to_string(c.num_heads) +
                ") is not a multiple of " + kv_field + " (" + std::to_string(c.num_kv_heads) + ")");
}

// Qwen2/Qwen3 can mix sliding-window and full layers; the engine has one attention kind.
void reject_qwen_sliding(const Fields& f) {
  bool sliding = f.boolean_or("use_sliding_window", false);
  if (const json* types = f.get("layer_types")) {
    if (!types->is_array()) f.fail("layer_types", std::string("must be an array, got ") + types->type_name());
    for (const json& t : *types)
      if (!t.is_string() || t.get<std::string>() != "full_attention") sliding = true;
  }
  if (sliding) throw Error(f.source() + ": sliding-window layers of Qwen2/Qwen3 are not supported");
}

void parse_llama_family(const Fields& f, ModelConfig& c) {
  c.vocab_size = f.dim("vocab_size", kMaxVocab);
  c.hidden_size = f.dim("hidden_size", kMaxHidden);
  c.intermediate_size = f.dim("intermediate_size", kMaxHidden);
  c.num_layers = f.dim("num_hidden_layers", kMaxLayers);
  c.num_heads = f.dim("num_attention_heads", kMaxHeads);
  c.num_kv_heads = f.dim_or("num_key_value_heads", kMaxHeads, c.num_heads);
  c.max_position_embeddings = f.dim("max_position_embeddings", kMaxPositions);
  c.norm = NormKind::Rms;
  c.norm_eps = f.positive_float("rms_norm_eps");
  c.act = read_act(f, "hidden_act", "silu",
                   {{"silu", Activation::Silu}, {"gelu_pytorch_tanh", Activation::GeluTanh}});
  check_heads(f, c, "num_attention_heads", "num_key_value_heads", "hidden_size", f.get("head_dim"));
  // RoPE rotates pairs of the head's halves.
  if (c.head_dim % 2 != 0)
    throw Error(f.source() + ": head_dim " + std::to_string(c.head_dim) + " must be even for RoPE");
  c.gated_mlp = true;
  c.learned_pos = false;
  c.tie_word_embeddings = f.boolean_or("tie_word_embeddings", false);
  read_rope(f, c);
  read_token_ids(f, c, -1);

  // Biases follow what each transformers model class builds, not every key a config may carry:
  // Mistral and Qwen2 hard-code theirs and ignore attention_bias / mlp_bias.
  switch (c.arch) {
    case Arch::Llama:
      c.qkv_bias = c.o_bias = f.boolean_or("attention_bias", false);
      c.mlp_bias = f.boolean_or("mlp_bias", false);
      break;
    case Arch::Mistral:
      if (const json* w = f.get("sliding_window")) {
        int64_t x = f.as_int("sliding_window", *w);
        if (x < 0) f.fail("sliding_window", "= " + std::to_string(x) + " must not be negative");
        c.sliding_window = static_cast<int>(std::min<int64_t>(x, kMaxPositions));
      }
      break;
    case Arch::Qwen2:
      reject_qwen_sliding(f);
      c.qkv_bias = true;
      break;
    case Arch::Qwen3:
      reject_qwen_sliding(f);
      c.qk_norm = true;
      c.qkv_bias = c.o_bias = f.boolean_or("attention_bias", false);
      break;
    case Arch::Gpt2:
      break;
  }
}

void parse_gpt2(const Fields& f, ModelConfig& c) {
  c.vocab_size = f.dim("vocab_size", kMaxVocab);
  c.hidden_size = f.dim("n_embd", kMaxHidden);
  c.num_layers = f.dim("n_layer", kMaxLayers);
  c.num_heads = f.dim("n_head", kMaxHeads);
  c.num_kv_heads = c.num_heads;
  c.max_position_embeddings = f.dim("n_positions", kMaxPositions);
  if (const json* inner = f.get("n_inner")) {
    c.intermediate_size = f.dim("n_inner", *inner, kMaxHidden);
  } else {
    c.intermediate_size = 4 * c.hidden_size;
    if (c.intermediate_size > kMaxHidden)
      throw Error(f.source() + ": 4 * n_embd (" + std::to_string(c.intermediate_size) +
                  ") is out of range for the MLP (max " + std::to_string(kMaxHidden) + ")");
  }
  check_heads(f, c, "n_head", "n_head", "n_embd", nullptr);
  c.norm = NormKind::Layer;
  c.norm_eps = f.positive_float("layer_norm_epsilon");
  c.act = read_act(f, "activation_function", "gelu_new",
                   {{"gelu_new", Activation::GeluTanh}, {"gelu_pytorch_tanh", Activation::GeluTanh}});
  // These two change the attention math itself; the defaults are what every released GPT-2 uses.
  if (!f.boolean_or("scale_attn_weights", true))
    f.fail("scale_attn_weights", "= false is not supported");
  if (f.boolean_or("scale_attn_by_inverse_layer_idx", false))
    f.fail("scale_attn_by_inverse_layer_idx", "= true is not supported");
  c.gated_mlp = false;
  c.learned_pos = true;
  c.qkv_bias = c.o_bias = c.mlp_bias = true;
  // GPT2LMHeadModel ties by default, and transformers 5 honours an explicit false.
  c.tie_word_embeddings = f.boolean_or("tie_word_embeddings", true);
  read_token_ids(f, c, 50256);
}

std::string supported_list(bool model_types) {
  std::string s;
  for (const ArchEntry& e : kArchs) s += (s.empty() ? "" : ", ") + std::string(model_types ? e.model_type : e.class_name);
  return s;
}

}  // namespace

ModelConfig parse_config_json(std::string_view json_text, const std::string& source) {
  json root;
  try {
    root = json::parse(json_text.begin(), json_text.end());
  } catch (const json::exception& e) {
    throw Error(source + ": invalid JSON: " + one_line(e.what()));
  }
  if (!root.is_object()) throw Error(source + ": not a JSON object");
  Fields f(root, source);

  ModelConfig c;
  const ArchEntry* entry = nullptr;
  const json* archs = f.get("architectures");
  if (archs && !(archs->is_array() && !archs->empty() && (*archs)[0].is_string()))
    f.fail("architectures", "must be a non-empty array of strings");
  if (archs) {
    std::string name = (*archs)[0].get<std::string>();
    for (const ArchEntry& e : kArchs)
      if (name == e.class_name) entry = &e;
    if (!entry)
      throw Error(source + ": unsupported architecture " + quote(name) + " (supported: " + supported_list(false) + ")");
  } else if (f.get("model_type")) {
    std::string type = f.string_or("model_type", "");
    for (const ArchEntry& e : kArchs)
      if (type == e.model_type) entry = &e;
    if (!entry)
      throw Error(source + ": unsupported model_type " + quote(type) + " (supported: " + supported_list(true) + ")");
  } else {
    throw Error(source + ": missing required field 'architectures' (and no 'model_type')");
  }
  c.arch = entry->arch;
  c.arch_name = entry->class_name;

  if (c.arch == Arch::Gpt2) {
    parse_gpt2(f, c);
  } else {
    parse_llama_family(f, c);
  }
  // transformers 5 writes "dtype"; 4.x wrote "torch_dtype".
  c.torch_dtype = f.get("dtype") ? f.string_or("dtype", "") : f.string_or("torch_dtype", "");
  return c;
}

ModelConfig load_config(const std::filesystem::path& model_dir) {
  std::filesystem::path path = model_dir / "config.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw Error(path.string() + ": no such file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(path.string() + ": read error");
  return parse_config_json(text, path.string());
}

const char* arch_name(Arch arch) {
  for (const ArchEntry& e : kArchs)
    if (e.arch == arch) return e.model_type;
  return "unknown";
}

}  // namespace mk
