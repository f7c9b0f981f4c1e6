// Scheduler invariants: tiles cover every unit once, queues follow a topological order, waits
// name earlier ops with their tile counts, surplus dependencies are joined by barriers, and a
// program with an unsatisfiable wait is reported as a hang instead of spinning forever.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <tuple>

#include "cpu/executor.h"
#include "engine_test_util.h"
#include "model/error.h"
#include "schedule/program.h"

namespace mk {
namespace {

using test::llama_3_2_1b_config;
using test::qwen2_5_1_5b_config;

void check_invariants(const OpGraph& g, const Program& p) {
  std::vector<uint32_t> tiles(p.num_counters, 0);
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> ranges(g.nodes.size());
  ASSERT_EQ(p.counter_node.size(), p.num_counters);
  for (const Instruction& ins : p.instructions) {
    ++tiles[ins.signal];
    if (p.counter_node[ins.signal] >= 0) {  // not a join
      EXPECT_EQ(p.counter_node[ins.signal], int32_t(ins.node)) << "a tile signals a counter of its own node";
      ranges[ins.node].push_back({ins.tile_begin, ins.tile_end});
    }
  }
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    auto& r = ranges[n];
    std::sort(r.begin(), r.end());
    ASSERT_FALSE(r.empty()) << g.nodes[n].name;
    uint32_t next = 0;
    for (auto [b, e] : r) {
      EXPECT_EQ(b, next) << g.nodes[n].name << ": tiles must cover the units once, in order";
      EXPECT_LT(b, e);
      next = e;
    }
    EXPECT_EQ(next, g.nodes[n].units) << g.nodes[n].name;
  }
  for (uint32_t s = 0; s < p.num_sms; ++s) {
    uint32_t last_node = 0;
    for (uint32_t k = 0; k < p.queue_size(s); ++k) {
      const Instruction& ins = p.queue(s)[k];
      EXPECT_GE(ins.node, last_node) << "SM " << s << " queue is not in topological order";
      last_node = ins.node;
      for (uint16_t w = 0; w < ins.n_waits; ++w) {
        const Wait& wt = ins.waits[w];
        ASSERT_LT(wt.counter, p.num_counters);
        EXPECT_EQ(wt.count, tiles[wt.counter]) << "a wait must count every tile of its producer";
        if (p.counter_node[wt.counter] >= 0) {
          EXPECT_LT(p.counter_node[wt.counter], int32_t(ins.node)) << "waits name earlier ops only";
        }
      }
    }
  }
}

TEST(Schedule, Llama1bAt132SmsIsCompleteOrderedAndBalanced) {
  GraphOptions go;
  go.max_ctx = 4096;
  const OpGraph g = build_graph(llama_3_2_1b_config(), go);
  ScheduleOptions so;
  so.num_sms = 132;
  const Program p = schedule(g, so);
  EXPECT_EQ(p.num_sms, 132u);
  check_invariants(g, p);
  const double total = std::accumulate(p.sm_bytes.begin(), p.sm_bytes.end(), 0.0);
  const double mx = *std::max_element(p.sm_bytes.begin(), p.sm_bytes.end());
  // bf16 weights of Llama-3.2-1B are 2.47 GB; the cost model adds the KV cache at its 1024-token
  // context hint and each tile's read of its input vector. Spread within 15% of the mean.
  EXPECT_GT(total, 2.47e9);
  EXPECT_LT(total, 2.70e9);
  EXPECT_LT(mx / (total / 132), 1.15);
  const std::string summary = summarize_program(p, g);
  EXPECT_NE(summary.find("132 SMs"), std::string::npos);
  EXPECT_NE(summary.find("imbalance"), std::string::npos);
  // One layer's ops, each on as many SMs as it has tiles (a row group or KV split a tile at most).
  EXPECT_NE(summary.find("layer 1's ops"), std::string::npos);
  EXPECT_NE(summary.find("L1.down                  128 tiles on 128 SMs, at most 1 on one"), std::string::npos) << summary;
  EXPECT_NE(summary.find("L1.qkv_rope               96 tiles on  96 SMs"), std::string::npos) << summary;
  EXPECT_EQ(summary.find("L2."), std::string::npos) << "one layer only";
}

// Attention's KV splits (Llama-3.2-1B: 8 KV heads, 32 x 64 query dims) by program and context.
TEST(Graph, KvSplitsFollowTheContext) {
  GraphOptions go;
  go.max_ctx = 4096;
  go.num_sms = 132;
  go.kv_span = kSingleSplitKeys;
  EXPECT_EQ(choose_kv_splits(llama_3_2_1b_config(), go), 1u)
      << "one split up to kSingleSplitKeys positions: no merge stage";
  go.kv_span = kSingleSplitKeys + 1;
  EXPECT_EQ(choose_kv_splits(llama_3_2_1b_config(), go), 16u) << "past it, a (kv head, split) unit per SM";
  go.kv_span = 0;
  EXPECT_EQ(choose_kv_splits(llama_3_2_1b_config(), go), 16u) << "no span: the full context";
  go.attn_head_blocks = 2;
  EXPECT_EQ(choose_kv_splits(llama_3_2_1b_config(), go), 8u) << "a (kv head, head block, split) unit per SM";
  go.n_tokens = 8;  // a short prompt's program keeps whole groups (build_graph), so its splits too
  EXPECT_EQ(choose_kv_splits(llama_3_2_1b_config(), go), 16u);
  go.attn_head_blocks = 1;
  go.n_tokens = 512;
  EXPECT_EQ(choose_kv_splits(llama_3_2_1b_config(), go), 1u) << "prefill splits by query rows";
  go.kv_splits = 200;
  EXPECT_EQ(choose_kv_splits(llama_3_2_1b_config(), go), 8u) << "a forced count, capped at 8M floats of partials";
  go.n_tokens = 1;
  EXPECT_EQ(choose_kv_splits(llama_3_2_1b_config(), go), 200u);
}

using test::attention_node;

// Decode's attention units by blocks of a GQA group's query heads (Llama-3.2-1B: 4 per KV head).
TEST(Graph, AttentionHeadBlocksMultiplyDecodeUnits) {
  GraphOptions go;
  go.max_ctx = 1024;
  go.kv_span = 64;  // one KV split
  EXPECT_EQ(attention_node(build_graph(llama_3_2_1b_config(), go), 0).units, 8u);
  go.attn_head_blocks = 4;
  const OpGraph g = build_graph(llama_3_2_1b_config(), go);
  EXPECT_EQ(attention_node(g, 3).units, 32u) << "a unit per query head";
  EXPECT_EQ(attention_node(g, 3).proto.a.attn.head_blocks, 4u);
  go.kv_span = 0;  // the full context: splits to give each SM a unit, 4 (16 with whole groups)
  EXPECT_EQ(attention_node(build_graph(llama_3_2_1b_config(), go), 0).units, 8u * 4 * 4);
  go.attn_head_blocks = 3;
  try {
    build_graph(llama_3_2_1b_config(), go);
    FAIL() << "3 does not divide a group of 4 heads";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not divide the 4 query heads"), std::string::npos) << e.what();
  }
  go.n_tokens = 64;  // prefill chooses its own, whatever the option says: 4 heads x 2 row tiles fit 8
                     // warps, and 2 blocks of them (32 units) let each item's keys go in two halves
  EXPECT_EQ(attention_node(build_graph(llama_3_2_1b_config(), go), 0).proto.a.attn.head_blocks, 2u);
}

// Decode's default head blocks (attn_head_blocks 0): blocks of fewer query heads until a position
// has 6 units, each block keeping at least 2 heads; as asked otherwise.
TEST(Graph, DecodeAttentionHeadBlocksByDefault) {
  ModelConfig c = llama_3_2_1b_config();
  GraphOptions go;
  go.max_ctx = 1024;
  go.kv_span = 64;  // one KV split: the units are (KV head, head block)
  const std::tuple<uint32_t, uint32_t, uint32_t> cases[] = {  // (query heads, KV heads, expected blocks)
      {32, 8, 1},   // Llama-3.2-1B: 8 units already
      {12, 2, 3},   // Qwen2.5-1.5B: blocks of 2 heads
      {16, 2, 4},   // Qwen2.5-3B
      {14, 2, 1},   // groups of 7: no divisor leaves blocks of 2 or more heads and 6 units
      {4, 2, 1},    // groups of 2 stay whole
      {8, 1, 4},    // one KV head: 4 blocks of 2
      {24, 4, 2}};  // 4 KV heads in 2 blocks of 3
  for (const auto& [heads, kv, blocks] : cases) {
    c.num_heads = heads, c.num_kv_heads = kv;
    const OpGraph g = build_graph(c, go);  // alive while its node is read
    EXPECT_EQ(attention_node(g, 1).units, kv * blocks) << heads << "/" << kv << " heads";
    EXPECT_EQ(attention_node(g, 1).proto.a.attn.head_blocks, blocks) << heads << "/" << kv << " heads";
  }
  c.num_heads = 12, c.num_kv_heads = 2;
  go.max_ctx = 4096;
  go.kv_span = kLongSpanKeys - 1;
  EXPECT_EQ(attention_node(build_graph(c, go), 1).proto.a.attn.head_blocks, 3u);
  go.kv_span = kLongSpanKeys;  // a long span: blocks of 3 heads (4 units) are enough
  EXPECT_EQ(attention_node(build_graph(c, go), 1).proto.a.attn.head_blocks, 2u);
  EXPECT_EQ(choose_kv_splits(c, go), 132u / 4);
  c.num_heads = 16;  // Qwen2.5-3B's groups of 8: 4 blocks, 2 at a long span
  EXPECT_EQ(attention_node(build_graph(c, go), 1).proto.a.attn.head_blocks, 2u);
  c.num_heads = 12;
  go.max_ctx = 1024, go.kv_span = 64;
  go.attn_head_blocks = 1;
  EXPECT_EQ(attention_node(build_graph(c, go), 1).units, 2u) << "asked: whole groups";
  go.attn_head_blocks = 0;
  go.kv_span = 0;  // the full context: the splits shrink by the blocks, a unit per SM
  EXPECT_EQ(choose_kv_splits(c, go), 132u / 6);
  go.n_tokens = 8;  // a short prompt keeps whole groups
  EXPECT_EQ(attention_node(build_graph(c, go), 1).proto.a.attn.head_blocks, 1u);
}

// A prefill attention unit takes as many of its group's query heads as one round of the GPU
// block's warps covers (16 rows of one head a warp), or half as many where then every unit still
// has an SM of its own (132), so that each item's keys go in two halves at once (kAttnKeyParts):
// Qwen2.5-1.5B's groups of 6 in 3 blocks of 2 (96 units), not 2 of 3; groups of 7 in 7 blocks
// (halves would need 224 units), of 16 in 4 (not 8: 256 units).
TEST(Graph, PrefillAttentionHeadBlocksFitOneRoundOfWarps) {
  ModelConfig c = llama_3_2_1b_config();
  GraphOptions go;
  go.max_ctx = 1024;
  go.n_tokens = 512;
  const std::pair<uint32_t, uint32_t> cases[] = {  // (query heads over 2 KV heads, expected blocks)
      {2, 1}, {8, 2}, {12, 3}, {14, 7}, {16, 4}, {32, 4}};
  for (const auto& [heads, blocks] : cases) {
    c.num_heads = heads, c.num_kv_heads = 2;
    const OpGraph g = build_graph(c, go);  // alive while its node is read
    const OpNode& n = attention_node(g, 1);
    EXPECT_EQ(n.proto.a.attn.head_blocks, blocks) << heads << " heads";
    EXPECT_EQ(n.units, 2u * blocks * (512 / 32)) << heads << " heads";
    EXPECT_LE((heads / 2 / blocks) * 2, kAttnUnitWarps) << heads << " heads";
  }
  go.n_tokens = 8;  // below kPrefillTokens: every row in one unit, on the CUDA cores
  c.num_heads = 12;
  EXPECT_EQ(attention_node(build_graph(c, go), 1).proto.a.attn.head_blocks, 1u);
}

// Where each unit of an AttnPartial lies: every (KV head, query head, split, row) once.
TEST(Isa, AttnUnitsCoverEveryHeadSplitAndRowOnce) {
  for (uint32_t HB : {1u, 2u, 3u, 6u})
    for (uint32_t R : {0u, 4u}) {
      const uint32_t group = 6, Hkv = 2, S = 3, M = 10, B = attn_row_blocks(M, R);
      AttnPartialArgs a{};
      a.num_splits = S, a.row_block = R, a.head_blocks = HB;
      std::vector<int> seen(Hkv * group * S * M, 0);
      for (uint32_t u = 0; u < Hkv * HB * S * B; ++u) {
        const AttnUnit t = attn_unit(a, u, group, M);
        ASSERT_LT(t.kvh, Hkv);
        ASSERT_EQ(t.g1 - t.g0, group / HB);
        for (uint32_t g = t.g0; g < t.g1; ++g)
          for (uint32_t m = t.m0; m < std::min(M, t.m0 + attn_block_rows(M, R)); ++m)
            ++seen[((t.kvh * group + g) * S + t.s) * M + m];
      }
      for (int n : seen) EXPECT_EQ(n, 1) << "HB " << HB << ", R " << R;
    }
}

// The GPU's graph options for a 512-token prefill of Llama-3.2-1B: bf16 activations, token blocks.
GraphOptions prefill_512_on_gpu() {
  GraphOptions go;
  go.max_ctx = 4096;
  go.n_tokens = 512;
  go.bf16_activations = true;
  return go;
}

// bf16 activations (the GPU's prefill): the block norms become Norm instructions writing bf16, which
// the products read; attention and gate/up write bf16 for o_proj and down. Decode keeps fp32.
TEST(Graph, Bf16ActivationsMarkPrefillOperands) {
  GraphOptions go = prefill_512_on_gpu();
  const OpGraph g = build_graph(llama_3_2_1b_config(), go);
  auto flags = [&](const std::string& name) {
    return int(test::node_named(g, name).proto.flags & (kFlagBf16In | kFlagBf16Out));
  };
  EXPECT_EQ(flags("L3.attn_norm"), kFlagBf16Out);
  EXPECT_EQ(flags("L3.qkv_rope"), kFlagBf16In);
  EXPECT_EQ(flags("L3.attn_partial"), kFlagBf16Out);
  EXPECT_EQ(flags("L3.o_proj"), kFlagBf16In);
  EXPECT_EQ(flags("L3.mlp_norm"), kFlagBf16Out);
  EXPECT_EQ(flags("L3.gate_up"), kFlagBf16In | kFlagBf16Out);
  EXPECT_EQ(flags("L3.down"), kFlagBf16In);
  EXPECT_EQ(flags("lm_head"), 0) << "the final norm stays fused: the LM head reads the fp32 stream";
  for (const OpNode& n : g.nodes)
    if (n.proto.opcode == uint16_t(Opcode::Norm)) {
      EXPECT_EQ(n.units, 512u) << "Norm tiles are rows";
    }
  ScheduleOptions so;
  so.num_sms = 132;
  check_invariants(g, schedule(g, so));

  go.n_tokens = 1;  // decode: fp32 throughout, norms fused
  for (const OpNode& n : build_graph(llama_3_2_1b_config(), go).nodes) {
    EXPECT_EQ(n.proto.flags & (kFlagBf16In | kFlagBf16Out), 0) << n.name;
    EXPECT_NE(n.proto.opcode, uint16_t(Opcode::Norm)) << n.name;
  }
}

// A 512-token prefill's gate/up tiles (4 token blocks) run in 4 waves; each wave must take whole
// columns of blocks (the same weight rows for every block), so that a wave reads a quarter of the
// weights rather than all of them.
TEST(Schedule, TokenBlockedTilesShareTheirWeightRowsInAWave) {
  const OpGraph g = build_graph(llama_3_2_1b_config(), prefill_512_on_gpu());
  ScheduleOptions so;
  so.num_sms = 132;
  const Program p = schedule(g, so);
  uint32_t node = 0;
  while (g.nodes[node].name != "L5.gate_up") ++node;
  ASSERT_EQ(g.nodes[node].token_blocks, 4u);
  const uint32_t per_block = g.nodes[node].units / 4;
  std::set<uint32_t> rows, blocks;  // of every SM's first gate/up tile: the first wave
  for (uint32_t s = 0; s < p.num_sms; ++s)
    for (uint32_t k = 0; k < p.queue_size(s); ++k)
      if (p.queue(s)[k].node == node) {
        rows.insert(p.queue(s)[k].tile_begin % per_block);
        blocks.insert(p.queue(s)[k].tile_begin / per_block);
        break;
      }
  EXPECT_EQ(blocks.size(), 4u);
  EXPECT_LE(rows.size(), 132u / 4 + 1) << "the first wave should cover few weight rows, every block of each";
}

// With token-block dependencies a prefill tile waits for the blocks of its own prompt rows only:
// block 0 of L5.gate_up waits for block 0 of L5.mlp_norm, not for all of it, attention's block b
// for the QKV blocks 0..b (keys and values, causal), and the LM head for every block of the last
// down projection. Without them every wait names whole ops (node counters).
TEST(Schedule, PrefillTilesWaitForTheirTokenBlock) {
  const OpGraph g = build_graph(llama_3_2_1b_config(), prefill_512_on_gpu());
  auto node = [&](const std::string& name) {
    uint32_t i = 0;
    while (g.nodes[i].name != name) ++i;
    return i;
  };
  // The producer counters (and their nodes) that tiles of `consumer` in token block `block` wait
  // for, through Barrier joins too.
  auto waited = [&](const Program& p, uint32_t consumer, uint32_t block) {
    std::set<uint32_t> counters;
    std::vector<uint32_t> todo;
    for (const Instruction& ins : p.instructions)
      if (ins.node == consumer && p.counter_node[ins.signal] >= 0 &&
          g.nodes[consumer].block_of_unit(ins.tile_begin) == block)
        for (uint16_t w = 0; w < ins.n_waits; ++w) todo.push_back(ins.waits[w].counter);
    while (!todo.empty()) {
      const uint32_t c = todo.back();
      todo.pop_back();
      if (p.counter_node[c] >= 0) {
        counters.insert(c);
        continue;
      }
      for (const Instruction& j : p.instructions)  // a join: what it waits for
        if (j.signal == c)
          for (uint16_t w = 0; w < j.n_waits; ++w) todo.push_back(j.waits[w].counter);
    }
    return counters;
  };
  auto counters_of = [&](const Program& p, uint32_t n) {
    std::set<uint32_t> c;
    for (uint32_t i = 0; i < p.num_counters; ++i)
      if (p.counter_node[i] == int32_t(n)) c.insert(i);
    return c;
  };
  ScheduleOptions so;
  so.num_sms = 132;
  const Program p = schedule(g, so);
  check_invariants(g, p);
  const uint32_t norm = node("L5.mlp_norm"), gate_up = node("L5.gate_up"), qkv = node("L5.qkv_rope");
  EXPECT_EQ(counters_of(p, norm).size(), 4u) << "one counter per token block";
  std::set<uint32_t> norm_waits;
  for (uint32_t c : waited(p, gate_up, 0))
    if (p.counter_node[c] == int32_t(norm)) norm_waits.insert(c);
  EXPECT_EQ(norm_waits, std::set<uint32_t>{norm}) << "block 0 waits for the norm's block 0 alone";
  for (uint32_t b = 0; b < 4; ++b) {
    std::set<uint32_t> qkv_waits;
    for (uint32_t c : waited(p, node("L5.attn_partial"), b))
      if (p.counter_node[c] == int32_t(qkv)) qkv_waits.insert(c);
    EXPECT_EQ(qkv_waits.size(), b + 1) << "attention's block " << b << " reads the keys of blocks 0.." << b;
  }
  std::set<uint32_t> head_waits;
  for (uint32_t c : waited(p, node("lm_head"), 0))
    if (p.counter_node[c] == int32_t(node("L15.down"))) head_waits.insert(c);
  EXPECT_EQ(head_waits, counters_of(p, node("L15.down"))) << "a whole op waits for every block";

  so.token_block_deps = false;
  const Program whole = schedule(g, so);
  check_invariants(g, whole);
  for (uint32_t c = 0; c < whole.num_counters; ++c) {
    if (whole.counter_node[c] >= 0) {
      EXPECT_EQ(whole.counter_node[c], int32_t(c)) << "one counter a node";
    }
  }
  EXPECT_EQ(waited(whole, gate_up, 0), waited(whole, gate_up, 3));
}

// The tile size (in units) of node `name` of a 1B-shaped prefill of `tokens` on `sms` SMs.
uint32_t prefill_tile_units(const std::string& name, uint32_t tokens, uint32_t sms) {
  GraphOptions go = prefill_512_on_gpu();
  go.n_tokens = tokens;
  go.num_sms = sms;
  return test::node_named(build_graph(llama_3_2_1b_config(), go), name).tile_units;
}

// Gated prefill tiles take 128 outputs (one 256-row pass on Hopper) where those still make 1.5
// waves of the SMs, 64 otherwise: 512 tokens on 132 SMs make 256 wide tiles; 256 tokens or 264
// SMs would leave most of the last wave idle.
TEST(Graph, GatedPrefillTilesWidenWhenTheyFillTheSms) {
  auto gate_up_tile = [](uint32_t tokens, uint32_t sms) { return prefill_tile_units("L0.gate_up", tokens, sms); };
  EXPECT_EQ(gate_up_tile(512, 132), 128u);
  EXPECT_EQ(gate_up_tile(1024, 132), 128u);
  EXPECT_EQ(gate_up_tile(256, 132), 64u);
  EXPECT_EQ(gate_up_tile(512, 264), 64u);
}

// o_proj and down tiles take 64, 128 or 256 rows, whichever gives the fewest waves times the pass's
// time (kPrefillRowTiles): Llama-3.2-1B's 2048 rows keep 64 at 512 tokens (128 tiles, one wave) and
// take 128 at 1024 (128 tiles, not 256 in two waves); Llama-3.2-3B's 3072 take 128 at 512 (96 tiles,
// not 192) and 256 at 1024 (96 tiles, not three waves of 64 or two of 128); Qwen2.5-1.5B's 1536
// keep 64 at 512 (96 tiles). On twice the SMs the 3B's 192 tiles of 64 make one wave.
TEST(Graph, PrefillRowTilesWidenWhereTheyMakeFewerWaves) {
  auto tile = [](const ModelConfig& c, const std::string& name, uint32_t tokens, uint32_t sms) {
    GraphOptions go = prefill_512_on_gpu();
    go.n_tokens = tokens;
    go.num_sms = sms;
    return test::node_named(build_graph(c, go), name).tile_units;
  };
  ModelConfig llama_3b = llama_3_2_1b_config();
  llama_3b.hidden_size = 3072, llama_3b.intermediate_size = 8192, llama_3b.num_heads = 24, llama_3b.num_kv_heads = 8,
  llama_3b.head_dim = 128, llama_3b.num_layers = 28;
  EXPECT_EQ(tile(llama_3_2_1b_config(), "L2.o_proj", 512, 132), 64u);
  EXPECT_EQ(tile(llama_3_2_1b_config(), "L2.down", 512, 132), 64u);
  EXPECT_EQ(tile(llama_3_2_1b_config(), "L2.down", 1024, 132), 128u);
  EXPECT_EQ(tile(llama_3b, "L2.o_proj", 512, 132), 128u);
  EXPECT_EQ(tile(llama_3b, "L2.down", 512, 132), 128u);
  EXPECT_EQ(tile(llama_3b, "L2.down", 1024, 132), 256u);
  EXPECT_EQ(tile(llama_3b, "L2.down", 512, 264), 64u);
  EXPECT_EQ(tile(qwen2_5_1_5b_config(), "L2.down", 512, 132), 64u);
}

// QKV tiles take 96 rows (6 parts of 16) where 4 token blocks make one wave of them (128 tiles on
// 132 SMs); with fewer blocks, the narrowest whole divisor of that which keeps them within one
// wave: 32 rows at one block (96 tiles), 48 at two (128).
TEST(Graph, PrefillQkvTilesNarrowToFillTheSms) {
  auto qkv_tile = [](uint32_t tokens, uint32_t sms) { return prefill_tile_units("L0.qkv_rope", tokens, sms); };
  EXPECT_EQ(qkv_tile(512, 132), 6u);
  EXPECT_EQ(qkv_tile(1024, 132), 6u);  // no width keeps 8 blocks in one wave: the widest
  EXPECT_EQ(qkv_tile(256, 132), 3u);
  EXPECT_EQ(qkv_tile(128, 132), 2u);
  EXPECT_EQ(qkv_tile(32, 132), 2u);
  EXPECT_EQ(qkv_tile(128, 264), 1u);
  // Qwen2.5-1.5B: 16 heads of 8 parts a block, which the widest (6) does not divide: 4 blocks of
  // 32 tiles of 64 rows, one wave, rather than 88 of 96.
  EXPECT_EQ(test::node_named(build_graph(qwen2_5_1_5b_config(), prefill_512_on_gpu()), "L0.qkv_rope").tile_units, 4u);
}

// Qwen2.5-1.5B's 512-token gate/up makes 280 tiles of 128 outputs on 132 SMs: two waves and 16
// tiles. Those 16, the last placed (every block's last 512 outputs), go out as 4 pieces of 32
// outputs each, 64 instructions of a narrow pass instead of a third wave of whole tiles; each piece
// inside its tile's token block. Llama-3.2-1B's 256 tiles leave 124 for the second wave: no pieces.
TEST(Scheduler, ShortLastWaveOfGatedTilesGoesOutInPieces) {
  const OpGraph g = build_graph(qwen2_5_1_5b_config(), prefill_512_on_gpu());
  ScheduleOptions so;
  so.num_sms = 132;
  const uint32_t gate_up = uint32_t(&test::node_named(g, "L3.gate_up") - g.nodes.data());
  // Per tile size (outputs), how many instructions; the pieces' token blocks and places in a block.
  auto sizes = [&](const Program& p) {
    std::map<uint32_t, uint32_t> n;
    for (const Instruction& ins : p.instructions)
      if (ins.node == gate_up) ++n[ins.tile_end - ins.tile_begin];
    return n;
  };
  const Program p = schedule(g, so);
  check_invariants(g, p);
  EXPECT_EQ(sizes(p), (std::map<uint32_t, uint32_t>{{32, 64}, {128, 264}}));
  for (const Instruction& ins : p.instructions) {
    if (ins.node != gate_up || ins.tile_end - ins.tile_begin != 32) continue;
    EXPECT_GE(ins.tile_begin % 8960, 8960u - 512) << "a piece of one of the last tiles of its block";
    EXPECT_EQ(ins.tile_begin / 8960, (ins.tile_end - 1) / 8960) << "inside one token block";
  }
  so.split_tail = false;
  const Program whole = schedule(g, so);
  check_invariants(g, whole);
  EXPECT_EQ(sizes(whole), (std::map<uint32_t, uint32_t>{{128, 280}}));

  const OpGraph llama = build_graph(llama_3_2_1b_config(), prefill_512_on_gpu());
  const uint32_t llama_gate_up = uint32_t(&test::node_named(llama, "L3.gate_up") - llama.nodes.data());
  so.split_tail = true;
  uint32_t tiles = 0;
  for (const Instruction& ins : schedule(llama, so).instructions) tiles += ins.node == llama_gate_up;
  EXPECT_EQ(tiles, 256u);
}

// A short prompt's down projection takes tiles of 256 rows by a range of its 8192 inputs (16 of 512
// at one token block, where 32 tiles of 64 rows would cover a quarter of the SMs), o_proj by 4
// ranges; each range's products go to split_part, and the Norm after adds them to the residual in
// range order. Not where a prompt's blocks fill the SMs (512 tokens), not before the final norm
// (folded into the LM head), not with fused norms (no Norm instruction), and not with split_k off.
// The ranges cover the input once, in whole 64-column stages.
TEST(Graph, ShortPromptProjectionsSplitByInputRanges) {
  const auto node = test::node_named;
  GraphOptions go = prefill_512_on_gpu();
  go.n_tokens = 128;
  const OpGraph g = build_graph(llama_3_2_1b_config(), go);
  const OpNode& down = node(g, "L3.down");
  EXPECT_EQ(down.proto.a.mv.k_splits, 16u);
  EXPECT_EQ(down.tile_units, 256u);
  EXPECT_EQ(down.units, 2048u * 16);
  ASSERT_NE(down.proto.a.mv.partial, kNone);
  EXPECT_EQ(down.writes.size(), 1u);  // split_part alone: x is the Norm's to update
  const NormArgs& next = node(g, "L4.attn_norm").proto.a.norm;
  EXPECT_EQ(next.k_splits, 16u);
  EXPECT_EQ(next.partial, down.proto.a.mv.partial);
  EXPECT_EQ(next.rows, 128u);
  EXPECT_EQ(node(g, "L3.o_proj").proto.a.mv.k_splits, 4u);
  EXPECT_EQ(node(g, "L3.mlp_norm").proto.a.norm.k_splits, 4u);
  EXPECT_EQ(node(g, "L3.attn_norm").proto.a.norm.k_splits, 16u);
  EXPECT_EQ(node(g, "L0.attn_norm").proto.a.norm.k_splits, 0u);  // after the embedding
  EXPECT_EQ(node(g, "L15.down").proto.a.mv.k_splits, 0u);
  EXPECT_LE(schedule(g, ScheduleOptions{}).instructions.size(), 20000u);
  auto down_splits = [&](GraphOptions o) {
    return node(build_graph(llama_3_2_1b_config(), o), "L3.down").proto.a.mv.k_splits;
  };
  GraphOptions o = go;
  o.n_tokens = 256;  // 2 blocks: 64 tiles of 64 rows, under half the SMs still
  EXPECT_EQ(down_splits(o), 8u);
  o.n_tokens = 512;
  EXPECT_EQ(down_splits(o), 0u);
  o = go;
  o.split_k = false;
  EXPECT_EQ(down_splits(o), 0u);
  o = go;
  o.bf16_activations = false;  // fused norms, no Norm instructions
  EXPECT_EQ(down_splits(o), 0u);
  o.fuse_norms = false;
  EXPECT_EQ(down_splits(o), 16u);
  o = go;
  o.n_tokens = 1;
  EXPECT_EQ(down_splits(o), 0u);
  for (uint32_t K : {8192u, 200u, 8960u})
    for (uint32_t splits : {1u, 2u, 4u, 5u}) {
      uint32_t next = 0;
      for (uint32_t s = 0; s < splits; ++s) {
        uint32_t k0, k1;
        k_range(K, splits, s, &k0, &k1);
        EXPECT_EQ(k0, next) << K << " / " << splits;
        if (k0 < K) {
          EXPECT_EQ(k0 % 64, 0u);  // (a range past K is empty: K = 200 in 5)
        }
        next = k1;
      }
      EXPECT_EQ(next, K) << K << " / " << splits;
    }
}

TEST(Schedule, EveryArchitectureAndSmCountKeepsInvariants) {
  for (Arch a : {Arch::Llama, Arch::Mistral, Arch::Qwen2, Arch::Qwen3, Arch::Gpt2})
    for (uint32_t sms : {1u, 7u, 132u})
      for (bool fuse : {true, false}) {
        GraphOptions go;
        go.max_ctx = 64;
        go.fuse_norms = fuse;
        go.n_tokens = sms == 7 ? 5 : 1;
        const OpGraph g = build_graph(test::toy_config(a), go);
        ScheduleOptions so;
        so.num_sms = sms;
        check_invariants(g, schedule(g, so));
      }
}

// Four producers feeding one consumer: with one wait slot per instruction, the scheduler must
// chain barriers, and every counter must still reach its target in any execution order.
OpGraph fan_in_graph() {
  OpGraph g;
  std::vector<int> bufs;
  for (int i = 0; i < 4; ++i) bufs.push_back(g.add_buffer("b" + std::to_string(i), 0));
  for (int i = 0; i < 4; ++i) {
    OpNode n;
    n.name = "producer" + std::to_string(i);
    n.proto.opcode = uint16_t(Opcode::Barrier);
    n.units = 3;
    n.writes = {bufs[i]};
    g.add_node(n);
  }
  OpNode c;
  c.name = "consumer";
  c.proto.opcode = uint16_t(Opcode::Barrier);
  c.units = 2;
  c.reads = bufs;
  g.add_node(c);
  g.finalize();
  return g;
}

TEST(Schedule, SurplusDependenciesAreJoinedByBarriers) {
  const OpGraph g = fan_in_graph();
  ASSERT_EQ(g.nodes.back().deps.size(), 4u);
  for (uint32_t max_waits : {1u, 2u, 3u}) {
    ScheduleOptions so;
    so.num_sms = 3;
    so.max_waits = max_waits;
    const Program p = schedule(g, so);
    EXPECT_GT(p.num_counters, g.nodes.size()) << "joins need counters of their own";
    for (const Instruction& ins : p.instructions)
      EXPECT_LE(ins.n_waits, ins.signal >= g.nodes.size() ? kMaxWaits : int(max_waits));
    check_invariants(g, p);
    for (uint64_t seed = 0; seed < 5; ++seed) {
      CpuExecOptions eo;
      eo.random_order = seed;
      CpuExecutor ex(p, {}, nullptr, eo);
      ex.run(0);
      ex.run(0);  // a second epoch reuses the counters without resetting them
    }
  }
}

TEST(Executor, UnsatisfiableWaitIsReportedAsAHang) {
  const OpGraph g = fan_in_graph();
  ScheduleOptions so;
  so.num_sms = 2;
  Program p = schedule(g, so);
  p.instructions.back().waits[0].count += 1;  // can never be reached
  for (bool random : {true, false}) {
    CpuExecOptions eo;
    if (random) eo.random_order = 1;
    eo.hang_timeout_s = 0.2;
    CpuExecutor ex(p, {}, nullptr, eo);
    try {
      ex.run(0);
      FAIL() << "expected a hang report";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("program hang"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace mk
