// Sampler tests: each processor against hand-computed distributions, their order, the empirical
// frequencies of many seeded draws, and determinism of the seed.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "generate/sampler.h"
#include "model/error.h"

namespace mk {
namespace {

// Logits whose softmax is exactly `probs` (up to rounding).
std::vector<float> logits_of(std::vector<double> probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(p > 0 ? float(std::log(p)) : -INFINITY);
  return l;
}

SamplingParams plain(float temperature = 1.0f) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  return p;
}

// The distribution as a token -> probability map, for comparisons that ignore order.
std::map<int32_t, double> dist(const SamplingParams& p, const std::vector<float>& logits,
                               std::vector<int32_t> history = {}) {
  Sampler s(p);
  std::map<int32_t, double> m;
  for (auto [t, q] : s.distribution(logits, history)) m[t] = q;
  return m;
}

void expect_dist(const std::map<int32_t, double>& got, const std::map<int32_t, double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (auto [t, q] : want) {
    ASSERT_TRUE(got.count(t)) << "token " << t << " was removed";
    EXPECT_NEAR(got.at(t), q, 1e-6) << "token " << t;
  }
}

TEST(Sampler, GreedyIsArgmax) {
  std::mt19937 rng(5);
  std::normal_distribution<float> n(0, 3);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<float> l(1000);
    for (float& v : l) v = n(rng);
    Sampler s(plain(0.0f));
    EXPECT_EQ(s.sample(l), argmax(l));
  }
  // Ties go to the first index, as torch.argmax and the engine's Argmax break them.
  EXPECT_EQ(argmax(std::vector<float>{1, 3, 3, 2}), 1);
}

TEST(Sampler, TemperatureOneKeepsTheSoftmax) {
  expect_dist(dist(plain(), logits_of({0.5, 0.3, 0.2})), {{0, 0.5}, {1, 0.3}, {2, 0.2}});
}

TEST(Sampler, TemperatureSharpensAndFlattens) {
  // T = 2: p ∝ sqrt(p); T = 0.5: p ∝ p².
  const auto l = logits_of({0.5, 0.3, 0.2});
  const double s = std::sqrt(0.5) + std::sqrt(0.3) + std::sqrt(0.2);
  expect_dist(dist(plain(2.0f), l), {{0, std::sqrt(0.5) / s}, {1, std::sqrt(0.3) / s}, {2, std::sqrt(0.2) / s}});
  const double q = 0.25 + 0.09 + 0.04;
  expect_dist(dist(plain(0.5f), l), {{0, 0.25 / q}, {1, 0.09 / q}, {2, 0.04 / q}});
}

TEST(Sampler, TopKKeepsTheKBestAndTies) {
  auto p = plain();
  p.top_k = 2;
  expect_dist(dist(p, logits_of({0.5, 0.3, 0.2})), {{0, 0.625}, {1, 0.375}});
  // HF removes only scores below the k-th: tokens tied with it stay.
  expect_dist(dist(p, {1.0f, 1.0f, 1.0f, 0.0f}), {{0, 1 / 3.0}, {1, 1 / 3.0}, {2, 1 / 3.0}});
}

TEST(Sampler, TopKOneIsGreedy) {
  std::mt19937 rng(9);
  std::normal_distribution<float> n(0, 2);
  auto p = plain(1.5f);
  p.top_k = 1;
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<float> l(500);
    for (float& v : l) v = n(rng);
    p.seed = trial;
    Sampler s(p);
    EXPECT_EQ(s.sample(l), argmax(l));
  }
}

TEST(Sampler, TopPCutsTheTailExactly) {
  const auto l = logits_of({0.5, 0.3, 0.15, 0.05});
  auto p = plain();
  // Kept: the most likely tokens until the ones above reach top_p.
  p.top_p = 0.81f;  // 0.5 + 0.3 < 0.81: the third stays
  expect_dist(dist(p, l), {{0, 0.5 / 0.95}, {1, 0.3 / 0.95}, {2, 0.15 / 0.95}});
  p.top_p = 0.79f;  // 0.5 + 0.3 >= 0.79: the third goes
  expect_dist(dist(p, l), {{0, 0.625}, {1, 0.375}});
  p.top_p = 0.51f;
  expect_dist(dist(p, l), {{0, 0.625}, {1, 0.375}});
  p.top_p = 0.49f;  // the top token alone already covers it
  expect_dist(dist(p, l), {{0, 1.0}});
  p.top_p = 0.96f;
  expect_dist(dist(p, l), {{0, 0.5}, {1, 0.3}, {2, 0.15}, {3, 0.05}});
}

TEST(Sampler, MinPIsRelativeToTheTopToken) {
  const auto l = logits_of({0.5, 0.3, 0.15, 0.05});
  auto p = plain();
  p.min_p = 0.2f;  // threshold 0.1: the 0.05 token goes
  expect_dist(dist(p, l), {{0, 0.5 / 0.95}, {1, 0.3 / 0.95}, {2, 0.15 / 0.95}});
  p.min_p = 0.4f;  // threshold 0.2
  expect_dist(dist(p, l), {{0, 0.625}, {1, 0.375}});
  // The same ratio on a flatter distribution keeps more: min-p scales with the top token.
  expect_dist(dist(p, logits_of({0.3, 0.25, 0.25, 0.2})), {{0, 0.3}, {1, 0.25}, {2, 0.25}, {3, 0.2}});
}

TEST(Sampler, RepetitionPenaltyHfSemantics) {
  auto p = plain();
  p.repeat_penalty = 2.0f;
  // Seen tokens 0 (positive logit: halved) and 2 (negative: doubled); repeats count once.
  const std::vector<float> l = {2.0f, 1.0f, -1.0f, 0.5f};
  const std::vector<double> z = {std::exp(1.0), std::exp(1.0), std::exp(-2.0), std::exp(0.5)};
  const double sum = z[0] + z[1] + z[2] + z[3];
  expect_dist(dist(p, l, {0, 2, 0, 0}), {{0, z[0] / sum}, {1, z[1] / sum}, {2, z[2] / sum}, {3, z[3] / sum}});
  // Greedy sees the penalty too (HF applies processors before the argmax).
  auto g = p;
  g.temperature = 0;
  Sampler s(g);
  EXPECT_EQ(s.sample(std::vector<float>{2.0f, 1.5f, 0.0f}, std::vector<int32_t>{0}), 1);
  EXPECT_FALSE(g.plain_greedy());
}

TEST(Sampler, ProcessorsApplyInHfOrder) {
  // Penalty before temperature: logit 2 of a seen token becomes 1, then /0.5 = 2.
  auto p = plain(0.5f);
  p.repeat_penalty = 2.0f;
  const double a = std::exp(2.0), b = std::exp(2.0);
  expect_dist(dist(p, {2.0f, 1.0f}, {0}), {{0, a / (a + b)}, {1, b / (a + b)}});
  // Top-p works on the distribution top-k left: after top-k = 2 the first token has
  // 0.4/0.7 > 0.5 and top-p 0.5 keeps it alone; on the full distribution it would keep two.
  p = plain();
  p.top_k = 2;
  p.top_p = 0.5f;
  expect_dist(dist(p, logits_of({0.4, 0.3, 0.2, 0.1})), {{0, 1.0}});
  p.top_k = 0;
  expect_dist(dist(p, logits_of({0.4, 0.3, 0.2, 0.1})), {{0, 0.4 / 0.7}, {1, 0.3 / 0.7}});
  // Temperature before top-p: T = 0.5 makes {0.4, 0.3, 0.2, 0.1} into {16, 9, 4, 1}/30.
  p = plain(0.5f);
  p.top_p = 0.6f;  // 16/30 < 0.6 so the second stays; 25/30 >= 0.6 so the third goes
  expect_dist(dist(p, logits_of({0.4, 0.3, 0.2, 0.1})), {{0, 16 / 25.0}, {1, 9 / 25.0}});
}

TEST(Sampler, EmpiricalFrequenciesMatch) {
  auto p = plain();
  p.top_k = 3;
  p.seed = 1234;
  Sampler s(p);
  const auto l = logits_of({0.4, 0.3, 0.2, 0.1});
  const int draws = 200000;
  std::vector<int> count(4);
  for (int i = 0; i < draws; ++i) ++count[s.sample(l)];
  EXPECT_EQ(count[3], 0);  // removed by top-k
  const double want[] = {0.4 / 0.9, 0.3 / 0.9, 0.2 / 0.9};
  for (int t = 0; t < 3; ++t) EXPECT_NEAR(double(count[t]) / draws, want[t], 0.005) << "token " << t;
}

TEST(Sampler, SameSeedSameTokens) {
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0, 1);
  std::vector<float> l(300);
  for (float& v : l) v = n(rng);
  SamplingParams p;  // the CLI defaults: top-k 40, top-p 0.95, min-p 0.05
  p.temperature = 1.5f;
  p.min_p = 0.0f;
  auto run = [&](uint64_t seed) {
    p.seed = seed;
    Sampler s(p);
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) out.push_back(s.sample(l));
    return out;
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8));
}

TEST(Sampler, RejectsBadParameters) {
  auto p = plain();
  p.top_p = 1.5f;
  EXPECT_THROW(Sampler{p}, Error);
  p = plain();
  p.repeat_penalty = 0;
  EXPECT_THROW(Sampler{p}, Error);
  p = plain(-1);
  EXPECT_THROW(Sampler{p}, Error);
  Sampler s(plain());
  EXPECT_THROW(s.sample(std::vector<float>{}), Error);
  EXPECT_THROW(s.sample(std::vector<float>{NAN, -INFINITY}), Error);
}

}  // namespace
}  // namespace mk
