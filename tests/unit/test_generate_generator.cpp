// Generator tests on a toy engine and tokenizer: greedy uses the engine's argmax, each stop
// condition (EOS, stop string, token limit, full context) ends where it should, the cache is reused.
#include <gtest/gtest.h>

#include <atomic>

#include "engine_test_util.h"
#include "generate/generator.h"
#include "model/error.h"
#include "runtime/engine.h"
#include "tokenizer/tokenizer.h"

namespace mk {
namespace {

// 97 tokens to match toy_config: three ChatML specials, the printable ASCII '!'..'z' and four
// byte-level pieces: space, newline, and the two bytes of "é" (so characters span tokens).
std::unique_ptr<Tokenizer> toy_tokenizer() {
  TokenizerSpec spec;
  spec.source = "toy";
  spec.vocab = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  for (int c = '!'; c <= 'z'; ++c) spec.vocab.push_back(std::string(1, char(c)));
  spec.vocab.insert(spec.vocab.end(), {"\xC4\xA0", "\xC4\x8A", "\xC3\x83", "\xC2\xA9"});  // Ġ Ċ Ã ©
  for (int32_t id = 0; id < 3; ++id) spec.added_tokens.push_back({id, spec.vocab[id]});
  spec.eos_ids = {0};
  PreTokenizerStep pre;
  pre.kind = PreTokenizerStep::Kind::kByteLevel;
  spec.pre_tokenizer = {pre};
  DecoderStep dec;
  dec.kind = DecoderStep::Kind::kByteLevel;
  spec.decoder = {dec};
  return Tokenizer::from_spec(std::move(spec));
}

struct Toy {
  ModelConfig config = test::toy_config(Arch::Llama);
  std::unique_ptr<test::RandomSource> source;
  std::unique_ptr<Tokenizer> tokenizer = toy_tokenizer();

  explicit Toy(uint64_t seed = 77) {
    GraphOptions go;
    go.max_ctx = 64;
    source = std::make_unique<test::RandomSource>(build_graph(config, go), seed);
  }
  std::unique_ptr<Engine> engine(uint32_t max_ctx = 64) const {
    EngineOptions eo;
    eo.threads = 2;
    eo.max_ctx = max_ctx;
    return Engine::create(config, *source, eo);
  }
};

GenerateOptions greedy(uint32_t n) {
  GenerateOptions o;
  o.sampling.temperature = 0;
  o.max_tokens = n;
  return o;
}

const std::vector<int32_t> kPrompt = {40, 60, 70, 80, 5, 93, 50};

TEST(Generator, GreedyUsesTheEnginesArgmax) {
  Toy toy;
  auto engine = toy.engine();
  Generator gen(*engine, *toy.tokenizer);
  const GenerateResult r = gen.generate(kPrompt, greedy(20));
  ASSERT_EQ(r.tokens.size(), 20u);
  EXPECT_EQ(r.stop, StopReason::kMaxTokens);
  EXPECT_EQ(r.decode_steps, 19u);

  // The same steps by hand: the sampler's greedy choice on the returned logits must be the
  // program's own Argmax at every step.
  auto e2 = toy.engine();
  Sampler s(greedy(1).sampling);
  std::vector<float> logits = e2->forward(kPrompt);
  for (size_t i = 0; i < r.tokens.size(); ++i) {
    const int32_t t = s.sample(logits);
    ASSERT_EQ(t, e2->last_argmax()) << "step " << i;
    ASSERT_EQ(t, r.tokens[i]) << "step " << i;
    logits = e2->forward(std::span(&t, 1));
  }
}

TEST(Generator, GreedyWithPenaltySamplesOnTheHost) {
  Toy toy;
  auto engine = toy.engine();
  Generator gen(*engine, *toy.tokenizer);
  GenerateOptions o = greedy(16);
  o.sampling.repeat_penalty = 1.3f;
  const GenerateResult r = gen.generate(kPrompt, o);
  auto e2 = toy.engine();
  Sampler s(o.sampling);
  std::vector<int32_t> seen = kPrompt;
  std::vector<float> logits = e2->forward(kPrompt);
  for (size_t i = 0; i < r.tokens.size(); ++i) {
    const int32_t t = s.sample(logits, seen);
    ASSERT_EQ(t, r.tokens[i]) << "step " << i;
    seen.push_back(t);
    logits = e2->forward(std::span(&t, 1));
  }
}

TEST(Generator, StreamedTextIsTheDecodedTokens) {
  Toy toy;
  auto engine = toy.engine();
  Generator gen(*engine, *toy.tokenizer);
  std::string streamed;
  const GenerateResult r = gen.generate(kPrompt, greedy(30), [&](std::string_view t) { streamed += t; });
  EXPECT_EQ(streamed, r.text);
  EXPECT_EQ(r.text, toy.tokenizer->decode(r.tokens));
}

TEST(Generator, StopsOnEos) {
  Toy toy;
  auto engine = toy.engine();
  Generator gen(*engine, *toy.tokenizer);
  const std::vector<int32_t> ref = gen.generate(kPrompt, greedy(20)).tokens;
  // The first token that first occurs after position 0 becomes the EOS.
  size_t k = 1;
  while (k < ref.size() && std::find(ref.begin(), ref.begin() + k, ref[k]) != ref.begin() + k) ++k;
  ASSERT_LT(k, ref.size()) << "toy model repeats itself; pick another seed";
  GenerateOptions o = greedy(20);
  o.stop_ids = {96, ref[k]};
  const GenerateResult r = gen.generate(kPrompt, o);
  EXPECT_EQ(r.stop, StopReason::kEos);
  EXPECT_EQ(r.stop_token, ref[k]);
  EXPECT_EQ(r.tokens, std::vector<int32_t>(ref.begin(), ref.begin() + k));
  EXPECT_EQ(r.text, toy.tokenizer->decode(r.tokens));  // the EOS is not shown
}

TEST(Generator, StopsOnAStopStringSplitAcrossTokens) {
  Toy toy;
  auto engine = toy.engine();
  Generator gen(*engine, *toy.tokenizer);
  const GenerateResult full = gen.generate(kPrompt, greedy(30));
  // Two ASCII characters: two tokens. Take a pair from the middle of the text.
  std::string stop;
  for (size_t p = full.text.size() / 2; p + 1 < full.text.size() && stop.empty(); ++p)
    if (full.text[p] > ' ' && full.text[p] < 0x7f && full.text[p + 1] > ' ' && full.text[p + 1] < 0x7f)
      stop = full.text.substr(p, 2);
  ASSERT_FALSE(stop.empty());
  GenerateOptions o = greedy(30);
  o.stop_strings = {stop};
  std::string streamed;
  const GenerateResult r = gen.generate(kPrompt, o, [&](std::string_view t) { streamed += t; });
  EXPECT_EQ(r.stop, StopReason::kStopString);
  EXPECT_EQ(streamed, full.text.substr(0, full.text.find(stop)));
  EXPECT_EQ(r.text, streamed);
  EXPECT_LT(r.tokens.size(), full.tokens.size());
}

TEST(Generator, StopsCleanlyWhenTheContextIsFull) {
  Toy toy;
  auto engine = toy.engine(16);
  Generator gen(*engine, *toy.tokenizer);
  const std::vector<int32_t> prompt(10, 42);
  GenerateResult r = gen.generate(prompt, greedy(100));
  // Positions 10..15 each produce one more token, and the 16th position's logits one last.
  EXPECT_EQ(r.stop, StopReason::kContextFull);
  EXPECT_EQ(r.tokens.size(), 7u);
  EXPECT_EQ(engine->position(), 16u);

  r = gen.generate(std::vector<int32_t>(16, 42), greedy(100));
  EXPECT_EQ(r.stop, StopReason::kContextFull);
  EXPECT_EQ(r.tokens.size(), 1u);
  EXPECT_THROW(gen.generate(std::vector<int32_t>(17, 42), greedy(1)), Error);
  EXPECT_THROW(gen.generate(std::vector<int32_t>{}, greedy(1)), Error);
}

TEST(Generator, StopsAfterTheCurrentTokenWhenCancelled) {
  Toy toy;
  auto engine = toy.engine();
  Generator gen(*engine, *toy.tokenizer);
  const GenerateResult full = gen.generate(kPrompt, greedy(30));
  ASSERT_EQ(full.stop, StopReason::kMaxTokens);

  // Cancelled before it starts (Ctrl-C during prefill): one token, and no decode step ran.
  std::atomic<bool> cancel{true};
  GenerateOptions o = greedy(30);
  o.cancel = &cancel;
  GenerateResult r = gen.generate(kPrompt, o);
  EXPECT_EQ(r.stop, StopReason::kInterrupted);
  EXPECT_STREQ(stop_reason_name(r.stop), "interrupted");
  EXPECT_EQ(r.tokens, std::vector<int32_t>(full.tokens.begin(), full.tokens.begin() + 1));
  EXPECT_EQ(engine->position(), kPrompt.size());

  // Cancelled once text has streamed: what was produced is a prefix of the full run, and the text
  // is all of it (the stream decoder's remainder flushed).
  cancel = false;
  std::string streamed;
  r = gen.generate(kPrompt, o, [&](std::string_view t) {
    streamed += t;
    if (streamed.size() >= 5) cancel = true;
  });
  EXPECT_EQ(r.stop, StopReason::kInterrupted);
  ASSERT_LT(r.tokens.size(), full.tokens.size());
  EXPECT_EQ(r.tokens, std::vector<int32_t>(full.tokens.begin(), full.tokens.begin() + r.tokens.size()));
  EXPECT_EQ(streamed, r.text);
  EXPECT_EQ(r.text, toy.tokenizer->decode(r.tokens));
}

TEST(Generator, ZeroMaxTokensOnlyPrefills) {
  Toy toy;
  auto engine = toy.engine();
  Generator gen(*engine, *toy.tokenizer);
  const GenerateResult r = gen.generate(kPrompt, greedy(0));
  EXPECT_TRUE(r.tokens.empty());
  EXPECT_EQ(r.stop, StopReason::kMaxTokens);
}

TEST(Generator, ReusesTheCacheOfAnUnchangedPrefix) {
  Toy toy;
  auto engine = toy.engine();
  Generator gen(*engine, *toy.tokenizer);
  const GenerateResult r1 = gen.generate(kPrompt, greedy(5));
  // The last token was sampled but not run: the cache holds the prompt and the first four.
  std::vector<int32_t> held = kPrompt;
  held.insert(held.end(), r1.tokens.begin(), r1.tokens.end() - 1);
  EXPECT_EQ(gen.context(), held);
  EXPECT_EQ(engine->position(), held.size());

  std::vector<int32_t> next = held;
  next.insert(next.end(), {r1.tokens.back(), 2, 1, 70});
  const GenerateResult r2 = gen.generate(next, greedy(8));
  EXPECT_EQ(r2.reused_tokens, held.size());

  auto fresh_engine = toy.engine();
  Generator fresh(*fresh_engine, *toy.tokenizer);
  EXPECT_EQ(fresh.generate(next, greedy(8)).tokens, r2.tokens);

  // A prompt that departs from the cache keeps only the common prefix, with the same result as a
  // fresh run; so does a prompt that is a prefix of the cache (one token must still run).
  std::vector<int32_t> other = kPrompt;
  other[3] = 11;
  const GenerateResult r3 = gen.generate(other, greedy(8));
  EXPECT_EQ(r3.reused_tokens, 3u);
  EXPECT_EQ(fresh.generate(other, greedy(8)).tokens, r3.tokens);
  const std::vector<int32_t> shorter(other.begin(), other.begin() + 4);
  const GenerateResult r4 = gen.generate(shorter, greedy(8));
  EXPECT_EQ(r4.reused_tokens, 3u);
  EXPECT_EQ(fresh.generate(shorter, greedy(8)).tokens, r4.tokens);
}

TEST(Generator, SameSeedSameText) {
  Toy toy;
  auto engine = toy.engine();
  Generator gen(*engine, *toy.tokenizer);
  GenerateOptions o;
  o.sampling.temperature = 1.5f;
  o.sampling.top_k = 0;
  o.sampling.top_p = 1.0f;
  o.sampling.min_p = 0.0f;
  o.max_tokens = 24;
  o.sampling.seed = 5;
  const auto a = gen.generate(kPrompt, o).tokens;
  const auto b = gen.generate(kPrompt, o).tokens;
  o.sampling.seed = 6;
  const auto c = gen.generate(kPrompt, o).tokens;
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(Generator, StopTokenIds) {
  Toy toy;
  ModelConfig c = toy.config;
  c.eos_token_ids = {5, 500};  // 500 is outside the vocabulary: ignored
  const std::vector<int32_t> ids = stop_token_ids(c, *toy.tokenizer, "<|im_end|>");
  EXPECT_EQ(ids, (std::vector<int32_t>{5, 0, 2}));
  // Without a template the well-known end markers still count when they are special tokens.
  EXPECT_EQ(stop_token_ids(c, *toy.tokenizer, ""), (std::vector<int32_t>{5, 0, 2}));
}

}  // namespace
}  // namespace mk
