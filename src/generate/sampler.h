// Sampler: turns one step's logits into the next token: repetition penalty, temperature, top-k,
// top-p and min-p in Hugging Face transformers' order, then a seeded draw (or argmax when greedy).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace mk {

struct SamplingParams {
  float temperature = 0.8f;     // <= 0: greedy (argmax after the repetition penalty)
  int32_t top_k = 40;           // <= 0: off
  float top_p = 0.95f;          // >= 1: off
  float min_p = 0.05f;          // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off; HF semantics over every token seen (prompt included)
  uint64_t seed = 0;

  bool greedy() const { return temperature <= 0.0f; }
  // Greedy without a penalty needs the raw argmax only, which the engine computes itself.
  bool plain_greedy() const { return greedy() && repeat_penalty == 1.0f; }
};

// Throws mk::Error naming the flag for a value outside its range (e.g. top_p > 1, penalty <= 0).
void validate(const SamplingParams& params);

// The first index of the largest value, as torch.argmax and the engine's Argmax pick it.
int32_t argmax(std::span<const float> logits);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  const SamplingParams& params() const { return params_; }
  void reseed(uint64_t seed) { rng_.seed(seed); }

  // `history`: every token the model has seen so far (for the repetition penalty).
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history = {});

  // The distribution sample() draws from after every processor: (token, probability) for the
  // tokens that survive, most likely first, probabilities summing to 1. Greedy: one token, 1.
  std::vector<std::pair<int32_t, double>> distribution(std::span<const float> logits,
                                                       std::span<const int32_t> history = {});

 private:
  // Fills kept_ (most likely first) with the survivors and their unnormalized weights; returns
  // their total weight.
  double filter(std::span<const float> logits, std::span<const int32_t> history);

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<float> scores_;                      // processed logits, reused across steps
  std::vector<std::pair<int32_t, double>> kept_;   // survivors: token, exp(score - max)
  std::vector<float> scratch_;
};

}  // namespace mk
