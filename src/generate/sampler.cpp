// Sampler: HF transformers' logits processors (RepetitionPenalty, Temperature, TopK, TopP, MinP)
// re-derived so that only the surviving candidates are sorted, then a seeded draw.
#include "generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "model/error.h"

namespace mk {

void validate(const SamplingParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0)
    throw Error("--temperature must be >= 0 (0 = greedy), got " + std::to_string(p.temperature));
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f))
    throw Error("--top-p must be in (0, 1], got " + std::to_string(p.top_p));
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f))
    throw Error("--min-p must be in [0, 1], got " + std::to_string(p.min_p));
  if (!(std::isfinite(p.repeat_penalty) && p.repeat_penalty > 0.0f))
    throw Error("--repeat-penalty must be > 0, got " + std::to_string(p.repeat_penalty));
}

int32_t argmax(std::span<const float> logits) {
  if (logits.empty()) throw Error("argmax of empty logits");
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) { validate(params_); }

double Sampler::filter(std::span<const float> logits, std::span<const int32_t> history) {
  const size_t V = logits.size();
  if (V == 0) throw Error("cannot sample from empty logits");
  scores_.assign(logits.begin(), logits.end());
  kept_.clear();

  if (params_.repeat_penalty != 1.0f) {
    // Each distinct token is penalized once, however often it occurred (HF gathers then scatters).
    scratch_.assign(V, 0.0f);
    for (int32_t t : history) {
      if (t < 0 || size_t(t) >= V || scratch_[t] != 0.0f) continue;
      scratch_[t] = 1.0f;
      float& s = scores_[t];
      s = s < 0 ? s * params_.repeat_penalty : s / params_.repeat_penalty;
    }
  }
  if (params_.greedy()) {
    kept_.push_back({argmax(scores_), 1.0});
    return 1.0;
  }
  if (params_.temperature != 1.0f)
    for (float& s : scores_) s /= params_.temperature;

  // Top-k keeps every token that ties with the k-th largest score, as HF's `scores < kth` does.
  float threshold = -std::numeric_limits<float>::infinity();
  if (params_.top_k > 0 && size_t(params_.top_k) < V) {
    scratch_ = scores_;
    auto kth = scratch_.begin() + (params_.top_k - 1);
    std::nth_element(scratch_.begin(), kth, scratch_.end(), std::greater<float>());
    threshold = *kth;
  }
  const float max_score = *std::max_element(scores_.begin(), scores_.end());
  if (!std::isfinite(max_score)) throw Error("cannot sample: the logits are not finite");

  // Softmax mass of the top-k survivors: top-p's cumulative probabilities are relative to it.
  double total = 0;
  // Min-p compares p_i with min_p * p_max, i.e. exp(s_i - max) with min_p; it also never
  // removes a token that top-p's walk needs, since every token above a kept one passes too.
  const double min_weight = params_.min_p > 0 ? double(params_.min_p) : 0.0;
  for (size_t i = 0; i < V; ++i) {
    if (!(scores_[i] >= threshold)) continue;
    const double w = std::exp(double(scores_[i]) - double(max_score));
    total += w;
    if (w >= min_weight) kept_.push_back({int32_t(i), w});
  }
  std::sort(kept_.begin(), kept_.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (params_.top_p < 1.0f) {
    // HF removes a token when the ascending cumulative probability up to it is <= 1 - top_p,
    // i.e. when the probability of the tokens ranked above it is already >= top_p.
    double above = 0;
    size_t n = 0;
    while (n < kept_.size() && (n == 0 || above / total < double(params_.top_p))) above += kept_[n++].second;
    kept_.resize(n);
  }
  double kept_total = 0;
  for (const auto& [t, w] : kept_) kept_total += w;
  return kept_total;
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  const double total = filter(logits, history);
  if (kept_.size() == 1) return kept_[0].first;
  // 53 random bits make a double in [0, 1) the same way on every standard library.
  const double u = double(rng_() >> 11) * 0x1.0p-53 * total;
  double cum = 0;
  for (const auto& [t, w] : kept_) {
    cum += w;
    if (u < cum) return t;
  }
  return kept_.back().first;  // u rounded up to the total
}

std::vector<std::pair<int32_t, double>> Sampler::distribution(std::span<const float> logits,
                                                              std::span<const int32_t> history) {
  const double total = filter(logits, history);
  std::vector<std::pair<int32_t, double>> out = kept_;
  for (auto& [t, p] : out) p /= total;
  return out;
}

}  // namespace mk
