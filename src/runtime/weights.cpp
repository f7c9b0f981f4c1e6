// load_weights: assembles engine weights from a TensorSource, with one-line errors naming the
// tensor when one is missing or its shape disagrees with the config.
#include "runtime/weights.h"

#include <cmath>
#include <numbers>
#include <sstream>

#include "model/error.h"

namespace mk {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

// Assembles the whole [out, in] (or [n]) tensor of `decl` (`shape`: its full shape) from its parts.
void assemble(const WeightDecl& decl, const std::vector<int64_t>& full, const TensorSource& src,
              std::vector<float>& out) {
  const int64_t cols = full.size() == 2 ? full[1] : 1;
  int64_t numel = 1;
  for (int64_t d : full) numel *= d;
  out.resize(numel);
  int64_t row = 0;
  std::vector<float> tmp;
  for (const std::string& name : decl.parts) {
    const TensorInfo* t = src.find(name);
    if (!t) throw Error("missing tensor '" + name + "' (needed for " + decl.name + ")");
    // Each part contributes whole rows of the engine's [out, in] (or [n]) layout.
    std::vector<int64_t> shape = t->shape;
    if (decl.transpose && shape.size() == 2) std::swap(shape[0], shape[1]);
    const bool vec = full.size() == 1;
    const bool ok = vec ? shape.size() == 1 : (shape.size() == 2 && shape[1] == cols);
    const int64_t rows = vec ? (shape.empty() ? 0 : shape[0]) : (ok ? shape[0] : 0);
    if (!ok || row + rows > full[0])
      throw Error("tensor '" + name + "' has shape " + shape_str(t->shape) + ", which does not fit " +
                  decl.name + " " + shape_str(full) + " from the config");
    tmp.resize(t->numel());
    convert_to_f32(*t, tmp.data());
    float* dst = out.data() + row * cols;
    if (decl.transpose && !vec) {
      // Source is [cols, rows] (in, out): element (i, j) goes to row j, column i.
      for (int64_t i = 0; i < cols; ++i)
        for (int64_t j = 0; j < rows; ++j) dst[j * cols + i] = tmp[i * rows + j];
    } else {
      std::copy(tmp.begin(), tmp.end(), dst);
    }
    row += rows;
  }
  if (row != full[0])
    throw Error("tensors for " + decl.name + " give " + std::to_string(row) + " rows, the config needs " +
                std::to_string(full[0]));
}

void load_one(const WeightDecl& decl, const TensorSource& src, std::vector<float>& out) {
  if (decl.full_shape.empty()) {
    assemble(decl, decl.shape, src, out);
    return;
  }
  // A tensor-parallel slice: the kept rows (and columns) of the whole tensor.
  std::vector<float> whole;
  assemble(decl, decl.full_shape, src, whole);
  const int64_t full_cols = decl.full_shape.size() == 2 ? decl.full_shape[1] : 1;
  const int64_t c0 = decl.full_shape.size() == 2 ? decl.col_begin : 0;
  const int64_t c1 = decl.full_shape.size() == 2 ? decl.col_end : 1;
  out.clear();
  out.reserve(decl.numel());
  for (const auto& [r0, r1] : decl.rows)
    for (int64_t r = r0; r < r1; ++r)
      out.insert(out.end(), whole.begin() + r * full_cols + c0, whole.begin() + r * full_cols + c1);
  if (int64_t(out.size()) != decl.numel())
    throw Error("internal: the tensor-parallel slice of " + decl.name + " has " + std::to_string(out.size()) +
                " elements, its shape " + shape_str(decl.shape) + " needs " + std::to_string(decl.numel()));
}

}  // namespace

std::vector<const float*> HostWeights::table() const {
  std::vector<const float*> t;
  for (const auto& d : data) t.push_back(d.data());
  return t;
}

size_t HostWeights::bytes() const {
  size_t b = 0;
  for (const auto& d : data) b += d.size() * sizeof(float);
  return b;
}

std::vector<float> rope_inv_freq(const ModelConfig& c) {
  const int half = c.head_dim / 2;
  std::vector<float> f(half);
  for (int i = 0; i < half; ++i)
    f[i] = static_cast<float>(1.0 / std::pow(double(c.rope_theta), double(2 * i) / c.head_dim));
  const RopeScaling& rs = c.rope_scaling;
  if (rs.type == RopeScaling::Type::Linear) {
    for (float& x : f) x /= rs.factor;
  } else if (rs.type == RopeScaling::Type::Llama3) {
    // Llama 3.1+: long wavelengths slowed by `factor`, short ones kept, a smooth blend between.
    const double old_ctx = rs.original_max_position_embeddings;
    const double low_wavelen = old_ctx / rs.low_freq_factor, high_wavelen = old_ctx / rs.high_freq_factor;
    for (float& x : f) {
      const double wavelen = 2 * std::numbers::pi / x;
      if (wavelen > low_wavelen) {
        x = static_cast<float>(x / rs.factor);
      } else if (wavelen >= high_wavelen) {
        const double smooth = (old_ctx / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
        x = static_cast<float>((1 - smooth) * x / rs.factor + smooth * x);
      }
    }
  }
  return f;
}

std::vector<float> rope_table(const ModelConfig& c, uint32_t max_ctx) {
  const std::vector<float> inv = rope_inv_freq(c);
  const size_t D = c.head_dim, half = D / 2;
  std::vector<float> t(size_t(max_ctx) * D);
  for (uint32_t p = 0; p < max_ctx; ++p)
    for (size_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(p) * inv[i];  // fp32 product, as HF computes it
      t[p * D + i] = std::cos(angle);
      t[p * D + half + i] = std::sin(angle);
    }
  return t;
}

HostWeights load_weights(const ModelConfig& config, const std::vector<WeightDecl>& decls,
                         const TensorSource& source, const ProgressFn& progress) {
  HostWeights w;
  w.data.resize(decls.size());
  for (size_t i = 0; i < decls.size(); ++i) {
    const WeightDecl& d = decls[i];
    if (d.kind == WeightDecl::Kind::RopeTable)
      w.data[i] = rope_table(config, static_cast<uint32_t>(d.shape[0]));
    else
      load_one(d, source, w.data[i]);
    if (progress) progress(i + 1, decls.size());
  }
  return w;
}

}  // namespace mk
