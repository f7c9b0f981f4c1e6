// The fence-free decode handoff's tags (graph/handoff_tags.cpp, kFlagTagOut and friends in isa.h):
// a model of what a reader can see checks that every word a reader accepts is the write it waited for.
#include <gtest/gtest.h>

#include <map>

#include "engine_test_util.h"

namespace mk {
namespace {

constexpr uint16_t kTagFlags = kFlagTagOut | kFlagNoFence | kFlagCheckIn | kFlagCheckRes;

const OpNode& node_named(const OpGraph& g, const std::string& name) {
  for (const OpNode& n : g.nodes)
    if (n.name == name) return n;
  throw std::runtime_error("no node " + name);
}

// Walks the graph in program order as the GPU may see it: a write made without a fence may still be
// invisible to its readers, who then see the buffer's previous write. Every reader of such a write
// must check the tag, expect the write's own, and the previous write must be a tagged one with
// another tag (so the stale word is re-read), never untagged data from before the program.
// Returns the number of fence-free writes.
int check_tag_model(const OpGraph& g) {
  struct Write {
    bool tagged = false, fenced = true;
    uint32_t tag = 0;
  };
  std::map<int, std::vector<Write>> history;  // buffer -> its writes so far
  int fence_free = 0;
  for (const OpNode& n : g.nodes) {
    const uint16_t f = n.proto.flags;
    for (int b : n.reads) {
      auto it = history.find(b);
      if (it == history.end() || it->second.back().fenced) continue;
      const Write& last = it->second.back();
      const bool as_residual = static_cast<Opcode>(n.proto.opcode) == Opcode::MatvecResidual &&
                               n.proto.a.mv.in != g.buffer(b).offset;
      const uint16_t check = as_residual ? kFlagCheckRes : kFlagCheckIn;
      const int shift = as_residual ? kTagResShift : kTagInShift;
      EXPECT_TRUE(f & check) << n.name << " reads " << g.buffer(b).name << " unchecked after a fence-free write";
      EXPECT_EQ(flag_tag(f, shift), last.tag) << n.name << " expects another write's tag";
      if (it->second.size() < 2) {
        ADD_FAILURE() << "the first write of " << g.buffer(b).name << " skipped its fence";
        continue;
      }
      const Write& previous = it->second[it->second.size() - 2];
      EXPECT_TRUE(previous.tagged) << n.name << " could accept untagged data in " << g.buffer(b).name;
      EXPECT_NE(previous.tag, last.tag) << n.name << " could accept the previous write of " << g.buffer(b).name;
    }
    for (int b : n.writes) {
      Write w;
      w.tagged = f & kFlagTagOut;
      w.fenced = !(f & kFlagNoFence);
      w.tag = flag_tag(f, kTagOutShift);
      if (!w.fenced) {
        ++fence_free;
        EXPECT_TRUE(w.tagged) << n.name << " skips its fence with untagged outputs";
        EXPECT_EQ(n.writes.size(), 1u) << n.name;
      }
      history[b].push_back(w);
    }
  }
  return fence_free;
}

TEST(HandoffTags, DecodeMatvecsSkipTheFenceSafelyInEveryArchitecture) {
  for (Arch arch : {Arch::Llama, Arch::Mistral, Arch::Qwen2, Arch::Qwen3, Arch::Gpt2}) {
    SCOPED_TRACE(arch_name(arch));
    GraphOptions go;
    go.max_ctx = 64;
    const OpGraph g = build_graph(test::toy_config(arch), go);
    // Two layers: o_proj and down of both but the first write of x (embed's), gate/up of the second.
    EXPECT_EQ(check_tag_model(g), 5);
  }
}

TEST(HandoffTags, WhichInstructionsOfALlamaLayerCarryWhat) {
  GraphOptions go;
  go.max_ctx = 64;
  const OpGraph g = build_graph(test::toy_config(Arch::Llama), go);
  auto flags = [&](const char* name) { return node_named(g, name).proto.flags & kTagFlags; };
  EXPECT_EQ(flags("embed"), kFlagTagOut) << "the first write of x keeps its fence";
  EXPECT_EQ(flags("L0.gate_up"), kFlagTagOut | kFlagCheckIn) << "the first write of the MLP activations keeps its fence";
  EXPECT_EQ(flags("L1.gate_up"), kFlagTagOut | kFlagNoFence | kFlagCheckIn);
  EXPECT_EQ(flags("L0.o_proj"), kFlagTagOut | kFlagNoFence) << "embed's x was fenced: nothing to check";
  EXPECT_EQ(flags("L0.down"), kFlagTagOut | kFlagNoFence | kFlagCheckRes) << "act of L0 was fenced";
  EXPECT_EQ(flags("L1.down"), kFlagTagOut | kFlagNoFence | kFlagCheckIn | kFlagCheckRes);
  EXPECT_EQ(flags("L1.qkv_rope"), kFlagCheckIn);
  EXPECT_EQ(flags("lm_head"), kFlagCheckIn);
  EXPECT_EQ(flags("L1.attn_partial"), 0);
  // x's writes in order: embed 0, L0.o_proj 1, L0.down 2, L1.o_proj 3, L1.down 0 (mod 4).
  const uint16_t down1 = node_named(g, "L1.down").proto.flags;
  EXPECT_EQ(flag_tag(down1, kTagOutShift), 0u);
  EXPECT_EQ(flag_tag(down1, kTagResShift), 3u) << "L1.o_proj's tag";
  EXPECT_EQ(flag_tag(down1, kTagInShift), 1u) << "L1.gate_up's tag";
  EXPECT_EQ(flag_tag(node_named(g, "lm_head").proto.flags, kTagInShift), 0u);
}

TEST(HandoffTags, PrefillShardedAndUnfusedNormsStayFenced) {
  GraphOptions prefill;
  prefill.max_ctx = 64;
  prefill.n_tokens = 20;
  prefill.bf16_activations = true;
  GraphOptions off;
  off.max_ctx = 64;
  off.tagged_handoff = false;
  GraphOptions sharded;
  sharded.max_ctx = 64;
  sharded.tp_size = 2;
  for (const GraphOptions& go : {prefill, off, sharded}) {
    const OpGraph g = build_graph(test::toy_config(Arch::Llama), go);
    for (const OpNode& n : g.nodes) EXPECT_EQ(n.proto.flags & kTagFlags, 0) << n.name;
  }
  // A standalone Norm reads x without checking tags: x stays untagged and its writers fenced, while
  // the MLP's activations (gate/up to down) are still handed over without one.
  GraphOptions unfused;
  unfused.max_ctx = 64;
  unfused.fuse_norms = false;
  const OpGraph g = build_graph(test::toy_config(Arch::Llama), unfused);
  EXPECT_EQ(node_named(g, "L1.down").proto.flags & kTagFlags, kFlagCheckIn);
  EXPECT_EQ(node_named(g, "L1.o_proj").proto.flags & kTagFlags, 0);
  EXPECT_EQ(node_named(g, "L1.gate_up").proto.flags & kTagFlags, kFlagTagOut | kFlagNoFence);
  EXPECT_EQ(check_tag_model(g), 1);
}

}  // namespace
}  // namespace mk
