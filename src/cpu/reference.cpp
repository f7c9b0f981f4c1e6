// reference_logits: the textbook decoder forward in fp32, written for clarity, not speed. It shares
// only the scalar helpers (dot, normalize, activate) and the RoPE frequencies with the executors.
#include "cpu/reference.h"

#include <cmath>
#include <limits>

#include "cpu/ops/context.h"
#include "model/error.h"

namespace mk {

std::vector<float> reference_logits(const OpGraph& g, const HostWeights& w, std::span<const int32_t> tokens) {
  const ModelConfig& c = g.config;
  const size_t n = tokens.size(), H = c.hidden_size, I = c.intermediate_size, D = c.head_dim;
  const size_t Hq = c.num_heads, Hkv = c.num_kv_heads, V = c.vocab_size, group = Hq / Hkv;
  auto W = [&](const std::string& name) -> const float* {
    const int id = g.weight_id(name);
    return id < 0 ? nullptr : w.data[id].data();
  };
  const NormKind nk = c.norm;
  const std::vector<float> inv_freq = rope_inv_freq(c);
  auto rope = [&](float* v, size_t pos) {
    for (size_t i = 0; i < D / 2; ++i) {
      const float angle = float(pos) * inv_freq[i];
      const float cs = std::cos(angle), sn = std::sin(angle), a = v[i], b = v[i + D / 2];
      v[i] = a * cs - b * sn;
      v[i + D / 2] = b * cs + a * sn;
    }
  };
  auto linear = [&](const float* Wm, const float* b, const float* x, float* y, size_t out, size_t in) {
    for (size_t r = 0; r < out; ++r) y[r] = cpu::dot(Wm + r * in, x, in) + (b ? b[r] : 0.0f);
  };

  std::vector<float> x(n * H), h(H), qkv((Hq + 2 * Hkv) * D), att(Hq * D), tmp(H), g1(I), u1(I);
  std::vector<float> K(c.num_layers * n * Hkv * D), Vc(c.num_layers * n * Hkv * D), logits(n * V);
  for (size_t p = 0; p < n; ++p) {
    if (tokens[p] < 0 || size_t(tokens[p]) >= V) throw Error("reference: token id out of range");
    float* xp = x.data() + p * H;
    for (size_t i = 0; i < H; ++i)
      xp[i] = W("embed")[tokens[p] * H + i] + (c.learned_pos ? W("pos_embed")[p * H + i] : 0.0f);
    for (int l = 0; l < c.num_layers; ++l) {
      const std::string L = std::to_string(l) + ".";
      cpu::normalize(xp, h.data(), H, nk, c.norm_eps, W(L + "attn_norm"), W(L + "attn_norm_bias"));
      linear(W(L + "qkv"), W(L + "qkv_bias"), h.data(), qkv.data(), (Hq + 2 * Hkv) * D, H);
      for (size_t hd = 0; hd < Hq + Hkv; ++hd) {
        float* v = qkv.data() + hd * D;
        const float* nw = W(L + (hd < Hq ? "q_norm" : "k_norm"));
        if (nw) cpu::normalize(v, v, D, NormKind::Rms, c.norm_eps, nw, nullptr);
        if (!c.learned_pos) rope(v, p);
      }
      float* Kl = K.data() + l * n * Hkv * D;
      float* Vl = Vc.data() + l * n * Hkv * D;
      for (size_t i = 0; i < Hkv * D; ++i) {
        Kl[p * Hkv * D + i] = qkv[Hq * D + i];
        Vl[p * Hkv * D + i] = qkv[(Hq + Hkv) * D + i];
      }
      const size_t first = c.sliding_window && p + 1 > size_t(c.sliding_window) ? p + 1 - c.sliding_window : 0;
      for (size_t hq = 0; hq < Hq; ++hq) {
        const size_t kvh = hq / group;
        std::vector<float> s(p + 1 - first);
        float mx = -std::numeric_limits<float>::infinity();
        for (size_t k = first; k <= p; ++k) {
          s[k - first] = cpu::dot(qkv.data() + hq * D, Kl + (k * Hkv + kvh) * D, D) / std::sqrt(float(D));
          mx = std::max(mx, s[k - first]);
        }
        float sum = 0;
        for (float& e : s) sum += (e = std::exp(e - mx));
        for (size_t i = 0; i < D; ++i) {
          float o = 0;
          for (size_t k = first; k <= p; ++k) o += s[k - first] * Vl[(k * Hkv + kvh) * D + i];
          att[hq * D + i] = o / sum;
        }
      }
      linear(W(L + "o"), W(L + "o_bias"), att.data(), tmp.data(), H, Hq * D);
      for (size_t i = 0; i < H; ++i) xp[i] += tmp[i];
      cpu::normalize(xp, h.data(), H, nk, c.norm_eps, W(L + "mlp_norm"), W(L + "mlp_norm_bias"));
      linear(W(L + "up"), W(L + "up_bias"), h.data(), u1.data(), I, H);
      if (c.gated_mlp) {
        linear(W(L + "gate"), W(L + "gate_bias"), h.data(), g1.data(), I, H);
        for (size_t i = 0; i < I; ++i) u1[i] *= cpu::activate(g1[i], c.act);
      } else {
        for (size_t i = 0; i < I; ++i) u1[i] = cpu::activate(u1[i], c.act);
      }
      linear(W(L + "down"), W(L + "down_bias"), u1.data(), tmp.data(), H, I);
      for (size_t i = 0; i < H; ++i) xp[i] += tmp[i];
    }
    cpu::normalize(xp, h.data(), H, nk, c.norm_eps, W("final_norm"), W("final_norm_bias"));
    linear(c.tie_word_embeddings ? W("embed") : W("lm_head"), nullptr, h.data(), logits.data() + p * V, V, H);
  }
  return logits;
}

}  // namespace mk
