// GgufModel: maps llama.cpp tensor names to Hugging Face names and dequantizes every tensor to
// float32 in HF layout (undoing llama's Q/K row permutation and GPT-2's Conv1D transpose).
#include "model/gguf/gguf_model.h"

#include <cstring>
#include <memory>
#include <span>
#include <thread>

#include "model/error.h"
#include "model/gguf/dequant.h"

namespace mk {
namespace {

struct PartName {
  const char* gguf;
  const char* hf;
};

// blk.N.<gguf>.{weight,bias} -> <prefix>N.<hf>.{weight,bias}
constexpr PartName kLlamaParts[] = {
    {"attn_norm", "input_layernorm"},       {"attn_q", "self_attn.q_proj"},
    {"attn_k", "self_attn.k_proj"},         {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"},    {"attn_q_norm", "self_attn.q_norm"},
    {"attn_k_norm", "self_attn.k_norm"},    {"ffn_norm", "post_attention_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},          {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};
constexpr PartName kLlamaGlobals[] = {
    {"token_embd", "model.embed_tokens"}, {"output_norm", "model.norm"}, {"output", "lm_head"}};

constexpr PartName kGpt2Parts[] = {
    {"attn_norm", "ln_1"},          {"attn_qkv", "attn.c_attn"}, {"attn_output", "attn.c_proj"},
    {"ffn_norm", "ln_2"},           {"ffn_up", "mlp.c_fc"},      {"ffn_down", "mlp.c_proj"},
};
constexpr PartName kGpt2Globals[] = {{"token_embd", "transformer.wte"},
                                     {"position_embd", "transformer.wpe"},
                                     {"output_norm", "transformer.ln_f"},
                                     {"output", "lm_head"}};

struct Parsed {
  bool block = false;
  std::string_view layer;  // digits of N for blk.N.*
  std::string_view part;   // e.g. "attn_q"
  std::string_view suffix; // "weight" or "bias"
};

bool parse_name(std::string_view name, Parsed& p) {
  size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) return false;
  p.suffix = name.substr(dot + 1);
  if (p.suffix != "weight" && p.suffix != "bias") return false;
  name = name.substr(0, dot);
  if (name.starts_with("blk.")) {
    name.remove_prefix(4);
    size_t d = name.find('.');
    if (d == 0 || d == std::string_view::npos || d > 9) return false;
    for (char ch : name.substr(0, d))
      if (ch < '0' || ch > '9') return false;
    if (d > 1 && name[0] == '0') return false;
    p.block = true;
    p.layer = name.substr(0, d);
    name.remove_prefix(d + 1);
  }
  p.part = name;
  return true;
}

const char* lookup(std::span<const PartName> table, std::string_view part) {
  for (const PartName& e : table)
    if (part == e.gguf) return e.hf;
  return nullptr;
}

// Inverse of the converter's HF->GGUF permutation (per head, row 2i+j came from row j*D/2 + i),
// applied along the outermost dimension of a [rows, inner] tensor.
void unpermute_rows(const float* src, float* dst, int64_t rows, int64_t inner, int64_t n_head) {
  const int64_t head = rows / n_head, half = head / 2;
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j) {
        const float* s = src + (h * head + 2 * i + j) * inner;
        float* d = dst + (h * head + j * half + i) * inner;
        std::memcpy(d, s, static_cast<size_t>(inner) * sizeof(float));
      }
}

// GGUF stores GPT-2's Conv1D weights as [out rows][in]; HF keeps them as [in rows][out].
void transpose(const float* src, float* dst, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = src[r * cols + c];
}

void dequantize_tensor(const GgufTensorInfo& t, float* out) {
  const auto row = static_cast<int64_t>(t.ne[0]);
  int64_t rows = 1;
  for (size_t d = 1; d < t.ne.size(); ++d) rows *= static_cast<int64_t>(t.ne[d]);
  const size_t row_bytes = ggml_row_bytes(t.type, row);
  auto work = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      dequantize_row(t.type, t.data + static_cast<size_t>(r) * row_bytes, out + r * row, row);
  };
  if (rows >= 2 && rows * row >= (int64_t{1} << 20)) {  // big enough to be worth a thread
    std::thread helper(work, rows / 2, rows);
    work(0, rows / 2);
    helper.join();
  } else {
    work(0, rows);
  }
}

}  // namespace

std::string gguf_to_hf_name(std::string_view arch, std::string_view gguf_name) {
  Parsed p;
  if (!parse_name(gguf_name, p)) return "";
  const bool gpt2 = arch == "gpt2";
  if (!gpt2 && arch != "llama" && arch != "qwen2" && arch != "qwen3") return "";
  const char* hf = p.block ? lookup(gpt2 ? std::span<const PartName>(kGpt2Parts)
                                         : std::span<const PartName>(kLlamaParts), p.part)
                           : lookup(gpt2 ? std::span<const PartName>(kGpt2Globals)
                                         : std::span<const PartName>(kLlamaGlobals), p.part);
  if (!hf) return "";
  std::string out;
  if (p.block) out = std::string(gpt2 ? "transformer.h." : "model.layers.") + std::string(p.layer) + ".";
  return out + hf + "." + std::string(p.suffix);
}

std::unique_ptr<GgufModel> GgufModel::open(const std::filesystem::path& path,
                                           std::function<void(size_t, size_t)> progress) {
  return open(GgufFile::open(path), std::move(progress));
}

std::unique_ptr<GgufModel> GgufModel::open(std::unique_ptr<GgufFile> file,
                                           std::function<void(size_t, size_t)> progress) {
  std::unique_ptr<GgufModel> m(new GgufModel());
  m->file_ = std::move(file);
  const GgufFile& f = *m->file_;
  const std::filesystem::path& path = f.path();
  m->config_ = gguf_model_config(f);
  const ModelConfig& c = m->config_;
  const std::string arch = f.get_string("general.architecture");
  auto fail = [&](const std::string& what) { throw Error(path.string() + ": " + what); };

  std::vector<std::pair<const GgufTensorInfo*, std::string>> todo;
  size_t total = 0;
  for (const GgufTensorInfo& t : f.tensors()) {
    std::string hf = gguf_to_hf_name(arch, t.name);
    if (hf.empty()) {
      m->unmapped_.push_back(t.name);
      continue;
    }
    total += t.nbytes;
    todo.emplace_back(&t, std::move(hf));
  }
  if (progress) progress(0, total);

  size_t done = 0;
  m->tensors_.reserve(todo.size());
  for (const auto& [tp, hf] : todo) {
    const GgufTensorInfo& t = *tp;
    const std::string_view name = t.name;
    int64_t numel = 1;
    TensorInfo info;
    info.name = hf;
    info.dtype = DType::F32;
    for (auto it = t.ne.rbegin(); it != t.ne.rend(); ++it) {
      info.shape.push_back(static_cast<int64_t>(*it));
      numel *= static_cast<int64_t>(*it);
    }

    // llama.cpp permutes Q/K rows only for the "llama" architecture (not qwen2/qwen3).
    int64_t n_head = 0;
    if (arch == "llama" && (name.ends_with(".attn_q.weight") || name.ends_with(".attn_q.bias")))
      n_head = c.num_heads;
    if (arch == "llama" && (name.ends_with(".attn_k.weight") || name.ends_with(".attn_k.bias")))
      n_head = c.num_kv_heads;
    const bool conv1d = arch == "gpt2" && t.ne.size() == 2 &&
                        (name.ends_with(".attn_qkv.weight") || name.ends_with(".attn_output.weight") ||
                         name.ends_with(".ffn_up.weight") || name.ends_with(".ffn_down.weight"));
    if (n_head > 0) {
      const int64_t outer = info.shape[0];
      if (t.ne.size() > 2 || outer != n_head * c.head_dim || c.head_dim % 2 != 0)
        fail("tensor '" + t.name + "' has " + std::to_string(outer) + " rows, expected heads * " +
             "head_dim = " + std::to_string(n_head * c.head_dim));
    }

    auto buf = std::make_unique_for_overwrite<float[]>(static_cast<size_t>(numel));
    if (n_head > 0 || conv1d) {
      auto tmp = std::make_unique_for_overwrite<float[]>(static_cast<size_t>(numel));
      dequantize_tensor(t, tmp.get());
      if (n_head > 0) {
        const int64_t inner = t.ne.size() == 2 ? static_cast<int64_t>(t.ne[0]) : 1;
        unpermute_rows(tmp.get(), buf.get(), info.shape[0], inner, n_head);
      } else {
        transpose(tmp.get(), buf.get(), info.shape[0], info.shape[1]);
        std::swap(info.shape[0], info.shape[1]);
      }
    } else {
      dequantize_tensor(t, buf.get());
    }
    info.data = reinterpret_cast<const std::byte*>(buf.get());
    info.nbytes = static_cast<size_t>(numel) * sizeof(float);
    m->buffers_.push_back(std::move(buf));
    m->index_.emplace(info.name, m->tensors_.size());
    m->tensors_.push_back(std::move(info));
    m->origins_.push_back(t.name);
    done += t.nbytes;
    if (progress) progress(done, total);
  }
  return m;
}

const TensorInfo* GgufModel::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

std::string GgufModel::origin(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? std::string() : origins_[it->second];
}

std::vector<std::string> GgufModel::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const TensorInfo& t : tensors_) out.push_back(t.name);
  return out;
}

}  // namespace mk
