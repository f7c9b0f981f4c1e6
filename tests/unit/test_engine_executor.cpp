// The CPU executor against the plain reference forward, for every architecture, with several SM
// counts, random instruction order, unfused norms and barrier joins: all must give the same logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "cpu/reference.h"
#include "engine_test_util.h"
#include "model/error.h"
#include "runtime/engine.h"

namespace mk {
namespace {

struct Variant {
  const char* name;
  uint32_t sms;
  std::optional<uint64_t> random_order;
  bool fuse_norms;
  uint32_t max_waits;
  uint32_t prefill_chunk;
  uint32_t prompt = 9;  // prompt tokens (prefill), then 6 decode steps
  uint32_t kv_splits = 0;  // 0: by context (one split at these short contexts)
  bool bf16 = false;       // --bf16: weights, KV cache and prefill activations rounded as on the GPU
  bool head_per_unit = false;  // decode's attention units take one query head each (attn_head_blocks)
};

const Variant kVariants[] = {
    {"sms1", 1, std::nullopt, true, 3, 256},     {"sms7", 7, std::nullopt, true, 3, 256},
    {"sms132", 132, std::nullopt, true, 3, 256}, {"random7", 7, 11, true, 3, 256},
    {"random132", 132, 12, false, 1, 256},       {"chunked", 5, std::nullopt, false, 3, 3},
    // Past 16 tokens a prefill program has one-pass matvec tiles and attention by blocks of 32 rows
    // (here 32 + 13) with a single KV split and no merge.
    {"long_prefill", 7, 13, true, 3, 256, 45},
    // Several KV splits merged by AttnReduce, in prefill (with row blocks) and in decode.
    {"splits3", 7, 14, true, 3, 256, 9, 3},        {"splits4_long", 5, 15, false, 2, 256, 40, 4},
    // Past 128 tokens prefill tiles also split the prompt into token blocks (here 128 + 22).
    {"token_blocks", 9, 16, true, 3, 256, 150},
    // The GPU's numerics: bf16 activations between a prefill's ops (its own Norm instructions),
    // fused and unfused, with token blocks and with KV splits merged into a bf16 output.
    {"bf16_prefill", 7, 17, true, 3, 256, 45, 0, true},   {"bf16_token_blocks", 9, 18, false, 3, 256, 150, 0, true},
    {"bf16_splits3", 7, 19, true, 3, 256, 40, 3, true},
    // Decode's attention by query head (a unit per head rather than per GQA group), with one KV
    // split and with several merged.
    {"head_units", 7, 21, true, 3, 256, 9, 0, false, true},   {"head_units_splits3", 5, 22, true, 2, 256, 9, 3, false, true},
};

// An engine over seeded random weights for `c`, its KV capacity eo.max_ctx.
std::unique_ptr<Engine> random_engine(const ModelConfig& c, uint64_t seed, const EngineOptions& eo) {
  GraphOptions go;
  go.max_ctx = eo.max_ctx;
  test::RandomSource src(build_graph(c, go), seed);
  return Engine::create(c, src, eo);
}

// `ours` (logits of every position of `tokens`, [n, vocab]) against the reference forward, from
// position `first` on: finite, and within `tolerance` of the largest reference logit.
void expect_reference_logits(Engine& engine, const std::vector<int32_t>& tokens, const std::vector<float>& ours,
                             size_t first, const std::string& label, float tolerance = 1e-4f) {
  const std::vector<float> ref =
      reference_logits(engine.compiled(1, false).graph, engine.weights(), tokens);
  ASSERT_EQ(ours.size(), ref.size());
  const size_t V = engine.config().vocab_size;
  float max_ref = 0, max_diff = 0;
  for (size_t i = first * V; i < ref.size(); ++i) {
    ASSERT_TRUE(std::isfinite(ours[i])) << label << ": position " << i / V;
    max_ref = std::max(max_ref, std::abs(ref[i]));
    max_diff = std::max(max_diff, std::abs(ours[i] - ref[i]));
  }
  EXPECT_GT(max_ref, 0.5f) << "degenerate test model";
  EXPECT_LE(max_diff, tolerance * max_ref) << label;
}

// Runs a prompt through prefill, then 6 decode steps, and compares every position's logits with the
// reference forward over the whole sequence.
void check(Arch arch, const Variant& v) {
  ModelConfig c = test::toy_config(arch);
  const uint32_t ctx = std::max(64u, v.prompt + 8);
  c.max_position_embeddings = std::max<int>(c.max_position_embeddings, ctx);  // GPT-2's learned positions
  EngineOptions eo;
  eo.sms = v.sms;
  eo.threads = 2;
  eo.random_order = v.random_order;
  eo.fuse_norms = v.fuse_norms;
  eo.max_waits = v.max_waits;
  eo.prefill_chunk = v.prefill_chunk;
  eo.kv_splits = v.kv_splits;
  eo.bf16 = v.bf16;
  eo.attn_head_blocks = v.head_per_unit ? c.num_heads / c.num_kv_heads : 1;
  eo.max_ctx = ctx;
  auto engine = random_engine(c, 1234 + static_cast<int>(arch), eo);

  std::vector<int32_t> tokens = {3, 17, 42, 5, 96, 0, 8, 8, 61, 23, 77, 14, 2, 50, 9};
  while (tokens.size() < v.prompt + 6) tokens.push_back(int32_t(tokens.size() * 37 + 11) % c.vocab_size);
  const size_t prompt = v.prompt;
  std::vector<float> ours = engine->forward(std::span(tokens).first(prompt), true);
  for (size_t i = prompt; i < tokens.size(); ++i) {
    std::vector<float> row = engine->forward(std::span(tokens).subspan(i, 1));
    // The program's own Argmax must agree with the logits it wrote.
    EXPECT_EQ(engine->last_argmax(), std::max_element(row.begin(), row.end()) - row.begin());
    ours.insert(ours.end(), row.begin(), row.end());
  }
  // The reference runs in fp32 on the same (rounded) weights. A bf16 KV cache alone moved these toy
  // models' logits by 0.4-1.4% of the largest, bf16 activations too by 1-3.6% (their activations
  // are large: random weights of std 0.3); reading a bf16 buffer as fp32, or the reverse, gives garbage.
  expect_reference_logits(*engine, tokens, ours, 0, std::string(arch_name(arch)) + " " + v.name,
                          v.bf16 ? 5e-2f : 1e-4f);
}

class ExecutorVsReference : public ::testing::TestWithParam<std::tuple<Arch, int>> {};

TEST_P(ExecutorVsReference, SameLogits) {
  check(std::get<0>(GetParam()), kVariants[std::get<1>(GetParam())]);
}

INSTANTIATE_TEST_SUITE_P(AllArchs, ExecutorVsReference,
                         ::testing::Combine(::testing::Values(Arch::Llama, Arch::Mistral, Arch::Qwen2,
                                                              Arch::Qwen3, Arch::Gpt2),
                                            ::testing::Range(0, int(std::size(kVariants)))),
                         [](const auto& info) {
                           return std::string(arch_name(std::get<0>(info.param))) + "_" +
                                  kVariants[std::get<1>(info.param)].name;
                         });

// A gated prefill's short last wave in pieces (ScheduleOptions::split_tail): 40 prompt tokens, an
// MLP of 256 outputs in 4 tiles of 64 on 3 SMs, so the fourth tile goes out as 2 pieces of 32. The
// same logits as whole tiles, bit for bit (each output is one dot product either way), and the
// reference's.
TEST(Engine, TailPiecesGiveTheSameLogits) {
  ModelConfig c = test::toy_config(Arch::Llama);
  c.intermediate_size = 256;
  std::vector<int32_t> tokens;
  for (int32_t i = 0; i < 40; ++i) tokens.push_back(i * 37 % c.vocab_size);
  auto run = [&](bool split_tail, size_t* gate_up_tiles) {
    EngineOptions eo;
    eo.sms = 3;
    eo.threads = 2;
    eo.max_ctx = 64;
    eo.split_tail = split_tail;
    auto engine = random_engine(c, 77, eo);
    std::vector<float> logits = engine->forward(tokens, true);
    const auto& compiled = engine->compiled(uint32_t(tokens.size()), true);
    const uint32_t node = uint32_t(&test::node_named(compiled.graph, "L0.gate_up") - compiled.graph.nodes.data());
    *gate_up_tiles = std::count_if(compiled.program.instructions.begin(), compiled.program.instructions.end(),
                                   [&](const Instruction& ins) { return ins.node == node; });
    if (split_tail) expect_reference_logits(*engine, tokens, logits, 0, "tail pieces");
    return logits;
  };
  size_t pieces = 0, whole = 0;
  const std::vector<float> split = run(true, &pieces), unsplit = run(false, &whole);
  EXPECT_EQ(whole, 4u);
  EXPECT_EQ(pieces, 5u);
  EXPECT_EQ(split, unsplit);
}

TEST(Engine, RejectsTokensOutsideVocabularyAndContext) {
  const ModelConfig c = test::toy_config(Arch::Llama);
  GraphOptions go;
  go.max_ctx = 8;
  test::RandomSource src(build_graph(c, go), 1);
  EngineOptions eo;
  eo.max_ctx = 8;
  auto engine = Engine::create(c, src, eo);
  const std::vector<int32_t> bad = {1, 97};
  EXPECT_THROW(engine->forward(bad), Error);
  const std::vector<int32_t> long_prompt(9, 1);
  try {
    engine->forward(long_prompt);
    FAIL() << "a prompt longer than the context must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exceed the context of 8"), std::string::npos) << e.what();
  }
  EXPECT_EQ(engine->position(), 0u);
}

TEST(Engine, ProgramCacheStaysBounded) {
  const ModelConfig c = test::toy_config(Arch::Llama);
  EngineOptions eo;
  eo.max_ctx = 128;
  eo.sms = 3;
  auto engine = random_engine(c, 3, eo);
  std::vector<float> first;
  for (uint32_t n = 1; n <= 2 * Engine::kProgramCache; ++n) {
    engine->reset();
    const std::vector<int32_t> prompt(n, 5);
    const std::vector<float> logits = engine->forward(prompt);
    EXPECT_LE(engine->programs_cached(), Engine::kProgramCache);
    if (n == 3) first = logits;
  }
  engine->reset();
  EXPECT_EQ(engine->forward(std::vector<int32_t>(3, 5)), first) << "a rebuilt program must give the same logits";
}

size_t attn_reduce_ops(const OpGraph& g) {
  return std::count_if(g.nodes.begin(), g.nodes.end(),
                       [](const OpNode& n) { return n.proto.opcode == uint16_t(Opcode::AttnReduce); });
}

// A toy engine whose context reaches past the kSingleSplitKeys positions where decode changes its
// KV splits, with enough SMs for several splits.
std::unique_ptr<Engine> engine_past_split_change(const ModelConfig& c) {
  EngineOptions eo;
  eo.max_ctx = kSingleSplitKeys + 16;
  eo.sms = 16;
  return random_engine(c, 5, eo);
}

// Decode programs are chosen by context: one KV split (no AttnReduce) up to kSingleSplitKeys
// positions, several past it. Generation crossing that point moves to the other program and stays exact.
TEST(Engine, DecodeChangesKvSplitsAsContextGrows) {
  const ModelConfig c = test::toy_config(Arch::Llama);
  auto engine = engine_past_split_change(c);
  std::vector<int32_t> tokens;
  for (uint32_t i = 0; i < kSingleSplitKeys + 6; ++i) tokens.push_back((i * 29 + 3) % c.vocab_size);
  const size_t prompt = kSingleSplitKeys - 6;
  std::vector<float> ours = engine->forward(std::span(tokens).first(prompt), true);
  EXPECT_EQ(attn_reduce_ops(engine->compiled(1, false).graph), 0u) << "one split before the change";
  for (size_t i = prompt; i < tokens.size(); ++i) {
    const std::vector<float> row = engine->forward(std::span(tokens).subspan(i, 1));
    ours.insert(ours.end(), row.begin(), row.end());
  }
  EXPECT_EQ(attn_reduce_ops(engine->compiled(1, false).graph), size_t(c.num_layers)) << "splits past the change";
  expect_reference_logits(*engine, tokens, ours, prompt - 1, "decode across the KV-split change");
}

// mk bench's warm-up: the decode programs of the steps it will time are built before the clock
// starts, the one past the KV-split change included.
TEST(Engine, PrepareDecodeBuildsTheProgramsOfTheStepsAhead) {
  const ModelConfig c = test::toy_config(Arch::Llama);
  auto engine = engine_past_split_change(c);
  engine->forward(std::vector<int32_t>(kSingleSplitKeys - 6, 7));
  engine->prepare_decode(4);  // 4 positions, still one split: the program forward() did not build
  const size_t before = engine->programs_cached();
  engine->prepare_decode(10);  // past kSingleSplitKeys: the several-split program too
  EXPECT_EQ(engine->programs_cached(), before + 1);
  engine->decode_greedy(10);
  EXPECT_EQ(engine->programs_cached(), before + 1) << "decoding built a program that prepare_decode did not";
  engine->prepare_decode(1000);  // past the context: stops at its end
}

// From kLongSpanKeys positions on, decode takes fewer attention head blocks where KV heads are few
// (Qwen2.5-1.5B's groups of 6 over 2: 3 blocks, then 2). With the KV splits forced, only the head
// blocks tell the two programs apart: generation crossing the point builds the second one and
// stays exact.
TEST(Engine, DecodeTakesFewerHeadBlocksAtLongSpans) {
  ModelConfig c = test::toy_config(Arch::Qwen2);
  c.num_heads = 12, c.hidden_size = 96, c.max_position_embeddings = 4096;
  EngineOptions eo;
  eo.max_ctx = kLongSpanKeys + 8;
  eo.sms = 16;
  eo.kv_splits = 2;
  auto engine = random_engine(c, 11, eo);
  std::vector<int32_t> tokens;
  for (uint32_t i = 0; i < kLongSpanKeys + 3; ++i) tokens.push_back((i * 31 + 5) % c.vocab_size);
  const size_t prompt = kLongSpanKeys - 3;
  std::vector<float> ours = engine->forward(std::span(tokens).first(prompt), true);
  auto head_blocks = [&] {
    return test::attention_node(engine->compiled(1, false).graph, 0).proto.a.attn.head_blocks;
  };
  EXPECT_EQ(head_blocks(), 3u) << "short of the long span";
  for (size_t i = prompt; i < tokens.size(); ++i) {
    const std::vector<float> row = engine->forward(std::span(tokens).subspan(i, 1));
    ours.insert(ours.end(), row.begin(), row.end());
  }
  EXPECT_EQ(head_blocks(), 2u) << "past it";
  expect_reference_logits(*engine, tokens, ours, prompt - 1, "decode across the head-block change");
}

TEST(Engine, RewindKeepsThePrefixAndGivesTheSameLogits) {
  const ModelConfig c = test::toy_config(Arch::Qwen3);
  GraphOptions go;
  go.max_ctx = 32;
  test::RandomSource src(build_graph(c, go), 4);
  EngineOptions eo;
  eo.max_ctx = 32;
  auto engine = Engine::create(c, src, eo);
  const std::vector<int32_t> a = {4, 8, 15, 16, 23, 42}, b = {4, 8, 15, 1, 2};
  engine->forward(a);
  EXPECT_THROW(engine->rewind(7), Error);
  engine->rewind(3);
  EXPECT_EQ(engine->position(), 3u);
  EXPECT_EQ(engine->last_argmax(), -1);
  const std::vector<float> resumed = engine->forward(std::span(b).subspan(3));
  engine->reset();
  EXPECT_EQ(engine->forward(b), resumed) << "the kept prefix must be exactly the cache a fresh run builds";
}

TEST(Engine, MissingTensorIsNamed) {
  const ModelConfig c = test::toy_config(Arch::Qwen2);
  class Empty : public TensorSource {
    const TensorInfo* find(std::string_view) const override { return nullptr; }
    std::vector<std::string> names() const override { return {}; }
  } empty;
  try {
    Engine::create(c, empty);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing tensor 'model.embed_tokens.weight'"), std::string::npos);
  }
}

}  // namespace
}  // namespace mk
