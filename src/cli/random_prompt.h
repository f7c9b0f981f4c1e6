// Seeded random token ids: the prompts `mk bench` and `mk trace` fill the KV cache with, so that
// timings do not depend on a tokenizer or on text.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace mk::cli {

inline std::vector<int32_t> random_tokens(uint32_t n, int32_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng() % vocab);
  return t;
}

}  // namespace mk::cli
