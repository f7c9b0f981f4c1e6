// The fence-free decode handoff's tags (graph/handoff_tags.cpp, kFlagTagOut and friends in isa.h):
// a model of what a reader can see checks that every word a reader accepts is the write it waited for.
// Waits by data (kFlagWaitByData): which stages get them, and a check of the safety argument on the
// graph's dependencies and on the scheduled instructions.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "schedule/program.h"

#include "engine_test_util.h"

namespace mk {
namespace {

constexpr uint16_t kTagFlags = kFlagTagOut | kFlagNoFence | kFlagCheckIn | kFlagCheckRes;

using test::node_named;

// Walks the graph in program order as the GPU may see it: a write made without a fence may still be
// invisible to its readers, who then see the buffer's previous write. Every reader of such a write
// must check the tag, expect the write's own, and the previous write must be a tagged one with
// another tag (so the stale word is re-read), never untagged data from before the program.
// Returns the number of fence-free writers.
int check_tag_model(const OpGraph& g) {
  struct Write {
    bool tagged = false, fenced = true;
    uint32_t tag = 0;
  };
  std::map<int, std::vector<Write>> history;  // buffer -> its writes so far
  std::set<int> read;                          // the buffers any node reads
  for (const OpNode& n : g.nodes) read.insert(n.reads.begin(), n.reads.end());
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
    if (f & kFlagNoFence) {
      ++fence_free;
      EXPECT_TRUE(f & kFlagTagOut) << n.name << " skips its fence with untagged outputs";
      // One tagged output; any other (AttnPartial's log-sum-exps with one KV split) is never read,
      // which the reads above would also catch: they see it as a fence-free write left unchecked.
      EXPECT_LE(std::count_if(n.writes.begin(), n.writes.end(), [&](int b) { return read.count(b) > 0; }), 1) << n.name;
    }
    for (int b : n.writes) {
      Write w;
      w.tagged = f & kFlagTagOut;
      w.fenced = !(f & kFlagNoFence);
      w.tag = flag_tag(f, kTagOutShift);
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
    // Two layers: o_proj and down of both but the first write of x (embed's); gate/up and attention
    // (its output) of the second.
    EXPECT_EQ(check_tag_model(g), 6);
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
  EXPECT_EQ(flags("L0.attn_partial"), kFlagTagOut) << "the first write of attention's output keeps its fence";
  EXPECT_EQ(flags("L1.attn_partial"), kFlagTagOut | kFlagNoFence) << "one KV split: its log-sum-exps go unread";
  EXPECT_EQ(flags("L1.o_proj"), kFlagTagOut | kFlagNoFence | kFlagCheckIn | kFlagCheckRes);
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
  EXPECT_EQ(node_named(g, "L1.o_proj").proto.flags & kTagFlags, kFlagCheckIn) << "attention's output is tagged";
  EXPECT_EQ(node_named(g, "L1.gate_up").proto.flags & kTagFlags, kFlagTagOut | kFlagNoFence);
  EXPECT_EQ(check_tag_model(g), 2);
}

int index_of(const OpGraph& g, const std::string& name) { return int(&node_named(g, name) - g.nodes.data()); }

// Every node that `i` waits for, directly or not.
std::set<int> ancestors(const OpGraph& g, int i) {
  std::set<int> seen;
  std::vector<int> todo(g.nodes[i].deps.begin(), g.nodes[i].deps.end());
  while (!todo.empty()) {
    const int d = todo.back();
    todo.pop_back();
    if (seen.insert(d).second) todo.insert(todo.end(), g.nodes[d].deps.begin(), g.nodes[d].deps.end());
  }
  return seen;
}

// Whether every tile of n reads all of buffer b as its input row (decode: QkvRope reads the hidden
// row, a matvec its in_dim-wide row, unless split by input ranges).
bool reads_whole_input(const OpGraph& g, const OpNode& n, int b) {
  const Instruction& in = n.proto;
  const Buffer& buf = g.buffer(b);
  switch (static_cast<Opcode>(in.opcode)) {
    case Opcode::QkvRope: return in.a.qkv.in == buf.offset && buf.floats == g.dims.hidden;
    case Opcode::MatvecResidual:
    case Opcode::MatvecAct:
    case Opcode::LmHead:
      return in.a.mv.in == buf.offset && in.a.mv.k_splits <= 1 && uint64_t(in.a.mv.in_dim) * in.a.mv.rows == buf.floats;
    default: return false;
  }
}

// The safety argument of waits by data (handoff_tags.cpp), checked node by node on the graph alone:
// reader E skips its wait for writer D of buffer b, and keeps waiting for D's own dependencies.
// Counts the nodes that wait by data into `count`.
void check_data_waits(const OpGraph& g, int& count) {
  count = 0;
  for (size_t e = 0; e < g.nodes.size(); ++e) {
    const OpNode& reader = g.nodes[e];
    if (reader.wait_by_data < 0) continue;
    ++count;
    const int d = reader.wait_by_data;
    const OpNode& writer = g.nodes[d];
    SCOPED_TRACE(reader.name + " by the data of " + writer.name);
    EXPECT_NE(std::find(reader.deps.begin(), reader.deps.end(), d), reader.deps.end()) << "not a dependency";
    // The row: the writer's one output that anyone reads (AttnPartial also stores log-sum-exps,
    // unread with one KV split); the skipped wait would have ordered the others.
    int b = -1;
    for (int w : writer.writes)
      if (std::count(reader.reads.begin(), reader.reads.end(), w)) b = w;
    ASSERT_GE(b, 0) << "the reader reads nothing of the writer's";
    for (int w : writer.writes)
      for (const OpNode& n : g.nodes)
        if (w != b) {
          ASSERT_EQ(std::count(n.reads.begin(), n.reads.end(), w), 0) << n.name << " reads " << g.buffer(w).name;
        }
    const Instruction& in = reader.proto;
    ASSERT_TRUE(in.flags & kFlagCheckIn) << "the row's tags are not awaited";
    ASSERT_TRUE(writer.proto.flags & kFlagTagOut);
    EXPECT_EQ(flag_tag(in.flags, kTagInShift), flag_tag(writer.proto.flags, kTagOutShift));
    // The whole row: every value of the write, so every writer tile has stored its outputs.
    EXPECT_TRUE(reads_whole_input(g, reader, b));
    // The write before D's is in every word once D's dependencies are done, and has another tag.
    int previous = -1;
    for (int k = d - 1; k >= 0 && previous < 0; --k)
      if (std::count(g.nodes[k].writes.begin(), g.nodes[k].writes.end(), b)) previous = k;
    ASSERT_GE(previous, 0) << "the buffer's first write: what is there before it could carry any tag";
    const OpNode& prev = g.nodes[previous];
    ASSERT_TRUE(prev.proto.flags & kFlagTagOut);
    EXPECT_NE(flag_tag(prev.proto.flags, kTagOutShift), flag_tag(writer.proto.flags, kTagOutShift));
    if (prev.proto.flags & kFlagNoFence) {
      std::set<int> done;
      for (int w : writer.deps) {
        done.insert(w);
        for (int a : ancestors(g, w)) done.insert(a);
      }
      bool settled = false;
      for (int r : done) {
        const OpNode& n = g.nodes[r];
        settled |= r > previous && r < d && reads_whole_input(g, n, b) && (n.proto.flags & kFlagCheckIn) &&
                   flag_tag(n.proto.flags, kTagInShift) == flag_tag(prev.proto.flags, kTagOutShift);
      }
      EXPECT_TRUE(settled) << prev.name << "'s write may still be on its way when the reader looks";
    }
    // No later write of the buffer can start before the reader is done.
    for (size_t k = e + 1; k < g.nodes.size(); ++k)
      if (std::count(g.nodes[k].writes.begin(), g.nodes[k].writes.end(), b)) {
        EXPECT_TRUE(ancestors(g, int(k)).count(int(e))) << g.nodes[k].name << " may overwrite the row early";
      }
  }
}
int data_waits_checked(const OpGraph& g) {
  int count = 0;
  check_data_waits(g, count);
  return count;
}

// The GPU's weight pipe holds its look-ahead while a fenced instruction runs only in programs where
// fences are the exception: one-rank decode. Under tensor parallelism every instruction fences, and
// holding at all of them leaves the pipe no look-ahead past the instruction in hand (session 47).
TEST(HandoffTags, FencesAreRareOnlyInOneRankDecode) {
  auto program = [](GraphOptions go) {
    go.max_ctx = 64;
    ScheduleOptions so;
    so.num_sms = 8;
    return schedule(build_graph(test::toy_config(Arch::Llama), go), so);
  };
  EXPECT_TRUE(fences_are_rare(program({})));
  GraphOptions sharded;
  sharded.tp_size = 2;
  EXPECT_FALSE(fences_are_rare(program(sharded)));
  GraphOptions off;
  off.tagged_handoff = false;
  EXPECT_FALSE(fences_are_rare(program(off)));
  GraphOptions prefill;
  prefill.n_tokens = 20;
  EXPECT_FALSE(fences_are_rare(program(prefill)));
}

TEST(DataWaits, WhichStagesOfALlamaDecodeWaitByData) {
  GraphOptions go;
  go.max_ctx = 64;
  EXPECT_TRUE(go.data_waits) << "on by default";
  go.data_waits = false;
  const OpGraph off = build_graph(test::toy_config(Arch::Llama), go);
  for (const OpNode& n : off.nodes) EXPECT_EQ(n.wait_by_data, -1) << n.name << ": off when asked";
  go.data_waits = true;
  const OpGraph g = build_graph(test::toy_config(Arch::Llama), go);
  auto by = [&](const char* name) { return node_named(g, name).wait_by_data; };
  EXPECT_EQ(by("L0.qkv_rope"), -1) << "embed's is x's first write";
  EXPECT_EQ(by("L0.gate_up"), index_of(g, "L0.o_proj"));
  EXPECT_EQ(by("L0.down"), -1) << "L0.gate_up's is the first write of the MLP activations";
  EXPECT_EQ(by("L1.qkv_rope"), index_of(g, "L0.down"));
  EXPECT_EQ(by("L1.gate_up"), index_of(g, "L1.o_proj"));
  EXPECT_EQ(by("L1.down"), index_of(g, "L1.gate_up"));
  EXPECT_EQ(by("lm_head"), index_of(g, "L1.down"));
  EXPECT_EQ(by("L0.o_proj"), -1) << "L0.attn_partial's is the first write of attention's output";
  EXPECT_EQ(by("L1.o_proj"), index_of(g, "L1.attn_partial"));
  for (const char* name : {"L1.attn_partial", "argmax"}) EXPECT_EQ(by(name), -1) << name;
  // The tags the skipped waits leave to check, unchanged where the handoff already checked them.
  EXPECT_EQ(node_named(g, "L0.gate_up").proto.flags & kTagFlags, kFlagTagOut | kFlagCheckIn);
  EXPECT_EQ(check_tag_model(g), check_tag_model(off));
}

TEST(DataWaits, NoOtherWriteCanPassForTheAwaitedOneInAnyArchitecture) {
  for (Arch arch : {Arch::Llama, Arch::Mistral, Arch::Qwen2, Arch::Qwen3, Arch::Gpt2}) {
    SCOPED_TRACE(arch_name(arch));
    GraphOptions go;
    go.max_ctx = 64;
    ModelConfig c = test::toy_config(arch);
    c.num_layers = 3;
    // Per layer but the first: QKV, o_proj, gate/up, down (or GPT-2's fc, proj); the first layer's
    // gate/up; the LM head.
    EXPECT_EQ(data_waits_checked(build_graph(c, go)), 4 * 2 + 1 + 1);
    go.fuse_norms = false;  // standalone norms read x untagged: only o_proj and down wait by data
    EXPECT_EQ(data_waits_checked(build_graph(c, go)), 4);
    go.fuse_norms = true;
    go.kv_splits = 3;  // AttnReduce writes attention's output
    EXPECT_EQ(data_waits_checked(build_graph(c, go)), 10);
    go.n_tokens = 20;  // prefill: no tags, no waits by data
    EXPECT_EQ(data_waits_checked(build_graph(c, go)), 0);
  }
}

TEST(DataWaits, TheSkippedWaitIsTheLastAndTheWritersOwnAreKept) {
  GraphOptions go;
  go.max_ctx = 64;
  const OpGraph g = build_graph(test::toy_config(Arch::Qwen2), go);
  ScheduleOptions so;
  so.num_sms = 7;
  const Program p = schedule(g, so);
  size_t flagged = 0;
  for (const Instruction& ins : p.instructions) {
    const OpNode& n = g.nodes[ins.node];
    if (p.counter_node[ins.signal] < 0) continue;  // a Barrier join
    EXPECT_EQ(bool(ins.flags & kFlagWaitByData), n.wait_by_data >= 0) << n.name;
    if (!(ins.flags & kFlagWaitByData)) continue;
    ++flagged;
    ASSERT_GE(ins.n_waits, 2) << n.name;
    EXPECT_EQ(ins.waits[ins.n_waits - 1].counter, uint32_t(n.wait_by_data)) << n.name;
    std::set<uint32_t> kept;
    for (uint16_t w = 0; w + 1 < ins.n_waits; ++w) kept.insert(ins.waits[w].counter);
    for (int d : g.nodes[n.wait_by_data].deps) EXPECT_TRUE(kept.count(uint32_t(d))) << n.name << " skips " << g.nodes[d].name;
    for (int d : n.deps)
      if (d != n.wait_by_data) {
        EXPECT_TRUE(kept.count(uint32_t(d))) << n.name << " skips " << g.nodes[d].name;
      }
  }
  EXPECT_GT(flagged, 0u);
  // With one wait slot the writer's dependencies do not fit beside it: the node waits as before.
  so.max_waits = 1;
  for (const Instruction& ins : schedule(g, so).instructions) EXPECT_FALSE(ins.flags & kFlagWaitByData);
}

}  // namespace
}  // namespace mk
