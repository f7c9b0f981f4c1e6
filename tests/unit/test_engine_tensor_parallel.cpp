// Tensor parallelism on the CPU executor (issue 9): for every architecture, 2 and 4 ranks (each a
// Program of its heads, MLP slice and vocabulary slice, meeting on AllReduce and ArgmaxRanks inside
// the step, or between the step's launches on exchanges) give the logits of one rank within 1e-3 of
// the largest logit, through a prefill and decode, and the same greedy tokens over 32 steps; models
// that do not split say why in one line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "engine_test_util.h"
#include "graph/graph.h"
#include "model/error.h"
#include "runtime/engine.h"

namespace mk {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Engine> engine_with(const ModelConfig& c, uint32_t tp, uint32_t sms, std::optional<uint64_t> order = {},
                                    TpComm comm = TpComm::Kernel, uint32_t attn_head_blocks = 1) {
  GraphOptions go;
  go.max_ctx = 96;
  test::RandomSource src(build_graph(c, go), 7);  // the whole model's tensors, as a file holds them
  EngineOptions eo;
  eo.device = Device::Cpu;
  eo.max_ctx = 96;
  eo.threads = 2;
  eo.sms = sms;
  eo.tp = tp;
  eo.random_order = order;
  eo.tp_comm = comm;
  eo.attn_head_blocks = attn_head_blocks;
  return Engine::create(c, src, eo);
}

void expect_close(const std::vector<float>& ours, const std::vector<float>& ref, const std::string& label) {
  ASSERT_EQ(ours.size(), ref.size()) << label;
  float max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    ASSERT_TRUE(std::isfinite(ours[i])) << label << " at " << i;
    max_ref = std::max(max_ref, std::abs(ref[i]));
    max_diff = std::max(max_diff, std::abs(ours[i] - ref[i]));
  }
  EXPECT_GT(max_ref, 0.5f) << "degenerate test model";
  EXPECT_LE(max_diff, 1e-3f * max_ref) << label;
}

class TensorParallel : public ::testing::TestWithParam<std::tuple<Arch, uint32_t, TpComm>> {};

TEST_P(TensorParallel, MatchesOneRank) {
  const auto [arch, tp, comm] = GetParam();
  const ModelConfig c = test::toy_config(arch);
  const std::string label = std::string(arch_name(arch)) + " tp " + std::to_string(tp);
  auto one = engine_with(c, 1, 6);
  auto many = engine_with(c, tp, 6, {}, comm);
  ASSERT_EQ(many->compiled(1, false).program.launches, comm == TpComm::Kernel ? 1u : 2u * c.num_layers + 2) << label;
  // A prompt long enough for the prefill program's tiles (16 tokens and more), every row's logits.
  std::vector<int32_t> prompt;
  for (int i = 0; i < 20; ++i) prompt.push_back((i * 37 + 11) % c.vocab_size);
  expect_close(many->forward(prompt, true), one->forward(prompt, true), label + " prefill");
  ASSERT_EQ(many->last_argmax(), one->last_argmax()) << label;
  // Greedy decode: the ranks' ArgmaxRanks picks the same token as one rank's Argmax.
  const std::vector<int32_t> want = one->decode_greedy(32);
  const std::vector<int32_t> got = many->decode_greedy(32);
  EXPECT_EQ(got, want) << label;
  // And one more step's logits, after the 32.
  const int32_t next = one->last_argmax();
  expect_close(many->forward(std::span(&next, 1)), one->forward(std::span(&next, 1)), label + " decode");
}

INSTANTIATE_TEST_SUITE_P(EveryArch, TensorParallel,
                         ::testing::Combine(::testing::Values(Arch::Llama, Arch::Mistral, Arch::Qwen2, Arch::Qwen3,
                                                              Arch::Gpt2),
                                            ::testing::Values(2u, 4u),
                                            ::testing::Values(TpComm::Kernel, TpComm::Launches)),
                         [](const auto& info) {
                           return std::string(arch_name(std::get<0>(info.param))) + "_tp" +
                                  std::to_string(std::get<1>(info.param)) +
                                  (std::get<2>(info.param) == TpComm::Launches ? "_launches" : "");
                         });

TEST(TensorParallelOrder, RandomOrderOfEveryRankStillMatches) {
  // Each rank runs its ready instructions in a seeded random order: the cross-rank waits alone
  // must keep AllReduce and ArgmaxRanks after every rank's producers.
  const ModelConfig c = test::toy_config(Arch::Qwen2);
  auto one = engine_with(c, 1, 6);
  auto many = engine_with(c, 2, 6, 1234);
  const std::vector<int32_t> prompt{3, 1, 4, 1, 5, 9, 2, 6};
  expect_close(many->forward(prompt, true), one->forward(prompt, true), "random order");
  // Between launches: each launch's instructions in random order, then the exchange.
  auto launches = engine_with(c, 2, 6, 1234, TpComm::Launches);
  one->reset();
  expect_close(launches->forward(prompt, true), one->forward(prompt, true), "random order, between launches");
}

TEST(TensorParallelSteps, RanksRunAheadWithoutAStepBarrier) {
  // The GPU's greedy loop queues every rank's steps with no barrier between them (Engine::
  // decode_greedy): a rank may start step t + 1, rewriting its partials, while its peers still run
  // step t. The same here: each rank on its own thread runs its steps back to back in random order,
  // feeding its own ArgmaxRanks token to its next step; every rank must give one rank's tokens.
  const ModelConfig c = test::toy_config(Arch::Qwen2);
  auto one = engine_with(c, 1, 6);
  auto many = engine_with(c, 2, 6, 77);
  const std::vector<int32_t> prompt{3, 1, 4, 1, 5};
  one->forward(prompt);
  many->forward(prompt);
  ASSERT_EQ(many->last_argmax(), one->last_argmax());
  constexpr uint32_t kSteps = 24;
  const std::vector<int32_t> want = one->decode_greedy(kSteps);
  const std::vector<Engine::Compiled*> ranks = many->compiled(1, false).ranks();
  const uint32_t pos = many->position();
  std::vector<std::vector<int32_t>> got(ranks.size());
  std::vector<std::exception_ptr> errors(ranks.size());
  std::vector<std::thread> threads;
  for (size_t r = 0; r < ranks.size(); ++r)
    threads.emplace_back([&, r] {
      try {
        CpuExecutor& ex = *ranks[r]->executor;
        const Program& p = ranks[r]->program;
        int32_t token = many->last_argmax();
        for (uint32_t i = 0; i < kSteps; ++i) {
          got[r].push_back(token);
          ex.io()[p.tokens_in] = token;
          ex.run(pos + i);
          token = ex.io()[p.tokens_out];
        }
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  for (size_t r = 0; r < ranks.size(); ++r) EXPECT_EQ(got[r], want) << "rank " << r;
}

TEST(TensorParallelLaunches, EachAllReduceStartsALaunchAfterItsExchange) {
  // A step of 2 launches a layer and 2 more (the last all-reduce's, then ArgmaxRanks'): every SM's
  // queue cut in order, each instruction in its node's launch, an all-reduce of the partial that
  // the launch's AllReduce reads before it, and the ranks' bests gathered before ArgmaxRanks.
  const ModelConfig c = test::toy_config(Arch::Llama);
  auto e = engine_with(c, 2, 6, {}, TpComm::Launches);
  const Engine::Compiled& prog = e->compiled(1, false);
  const Program& p = prog.program;
  ASSERT_EQ(p.launches, 2u * c.num_layers + 2);
  ASSERT_EQ(p.exchanges.size(), p.launches - 1);
  ASSERT_EQ(p.launch_begin.size(), size_t(p.launches + 1) * p.num_sms);
  std::vector<uint32_t> first_opcode(p.launches, ~0u);  // the opcode of each launch's first node
  for (uint32_t s = 0; s < p.num_sms; ++s) {
    EXPECT_EQ(p.launch_begin[s], p.queue_begin[s]);
    EXPECT_EQ(p.launch_begin[size_t(p.launches) * p.num_sms + s], p.queue_begin[s + 1]);
    for (uint32_t k = 0; k < p.launches; ++k) {
      const uint32_t begin = p.launch_begin[size_t(k) * p.num_sms + s], end = p.launch_begin[size_t(k + 1) * p.num_sms + s];
      ASSERT_LE(begin, end);
      for (uint32_t i = begin; i < end; ++i) {
        const Instruction& ins = p.instructions[i];
        EXPECT_EQ(prog.graph.nodes[ins.node].launch, k) << "SM " << s << " instruction " << i;
        EXPECT_FALSE(ins.flags & kFlagWaitAllRanks) << "no wait crosses ranks between launches";
      }
    }
  }
  for (const OpNode& n : prog.graph.nodes)
    if (first_opcode[n.launch] == ~0u) first_opcode[n.launch] = n.proto.opcode;
  for (uint32_t k = 1; k < p.launches; ++k) {
    const Exchange& x = p.exchanges[k - 1];
    if (k + 1 < p.launches) {
      EXPECT_EQ(first_opcode[k], uint32_t(Opcode::AllReduce)) << k;
      EXPECT_EQ(x.kind, Exchange::Kind::Sum);
      EXPECT_EQ(x.floats, c.hidden_size);
      const auto reads_it = [&](const OpNode& n) {
        return n.launch == k && n.proto.opcode == uint16_t(Opcode::AllReduce) && n.proto.a.all_reduce.partial == x.offset;
      };
      EXPECT_TRUE(std::any_of(prog.graph.nodes.begin(), prog.graph.nodes.end(), reads_it)) << k;
    } else {
      EXPECT_EQ(first_opcode[k], uint32_t(Opcode::ArgmaxRanks));
      EXPECT_EQ(x.kind, Exchange::Kind::Gather);
      EXPECT_EQ(x.floats, 2u * 2);  // two ranks' (max, index) of one row
    }
  }
}

TEST(TensorParallelOrder, DecodeByQueryHeadOnEveryRank) {
  // Each rank's decode attention a unit per query head (Qwen3: 8 heads over 2 KV heads, so 2 ranks
  // keep groups of 4 and split them in 4): the same greedy tokens and logits as one rank's whole groups.
  ModelConfig c = test::toy_config(Arch::Qwen3);
  c.num_heads = 8;
  c.head_dim = 4;
  auto one = engine_with(c, 1, 6);
  auto many = engine_with(c, 2, 6, 99, TpComm::Kernel, 4);
  const std::vector<int32_t> prompt{3, 1, 4, 1, 5};
  expect_close(many->forward(prompt, true), one->forward(prompt, true), "prompt");
  EXPECT_EQ(many->decode_greedy(12), one->decode_greedy(12));
  const int32_t next = one->last_argmax();
  expect_close(many->forward(std::span(&next, 1)), one->forward(std::span(&next, 1)), "decode");
}

TEST(TensorParallelSplit, SlicesCoverTheModel) {
  ModelConfig c = test::toy_config(Arch::Llama);  // 4 query heads, 2 KV heads, I = 48, V = 97
  const TpSplit a = tp_split(c, 4, 3);
  EXPECT_EQ(a.heads, 1u);
  EXPECT_EQ(a.kv_heads, 1u);
  EXPECT_EQ(a.kv_head0, 1u);  // ranks 2 and 3 share KV head 1 (their GQA group)
  EXPECT_EQ(a.inter, 12u);
  EXPECT_EQ(a.vocab0, 75u);
  EXPECT_EQ(a.vocab, 22u);  // 97 = 25 + 25 + 25 + 22
  const TpSplit b = tp_split(c, 2, 1);
  EXPECT_EQ(b.kv_heads, 1u);
  EXPECT_EQ(b.kv_head0, 1u);
  EXPECT_EQ(b.vocab0, 49u);
  EXPECT_EQ(b.vocab, 48u);
}

TEST(TensorParallelSplit, ModelsThatDoNotSplitSayWhy) {
  const ModelConfig c = test::toy_config(Arch::Llama);
  EXPECT_THAT([&] { tp_split(c, 3, 0); }, ::testing::ThrowsMessage<Error>(HasSubstr("4 query heads")));
  ModelConfig wide = c;
  wide.num_heads = 8;
  wide.num_kv_heads = 4;
  wide.intermediate_size = 50;
  EXPECT_THAT([&] { tp_split(wide, 4, 0); }, ::testing::ThrowsMessage<Error>(HasSubstr("intermediate size 50")));
  ModelConfig gqa = c;
  gqa.num_heads = 12;
  gqa.num_kv_heads = 3;
  gqa.intermediate_size = 48;
  EXPECT_THAT([&] { tp_split(gqa, 2, 0); }, ::testing::ThrowsMessage<Error>(HasSubstr("3 KV heads")));
  EXPECT_THAT([&] { tp_split(c, 0, 0); }, ::testing::ThrowsMessage<Error>(HasSubstr("at least one rank")));
}

}  // namespace
}  // namespace mk
