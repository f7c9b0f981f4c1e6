// The fence-free decode handoff (kFlagTagOut, kFlagNoFence, kFlagCheckIn, kFlagCheckRes in isa.h):
// which buffers carry tags, each write's tag, what each reader expects, and which matvecs may
// signal without a fence.
//
// Why it is safe. A reader waits on the writer's counter as before, so it runs after every writer
// tile has stored its values; without the fence some of those stores may not be visible yet, and
// what the reader sees at such a word is the word's previous value. That value is the buffer's
// previous write and nothing older: each write of a tagged buffer is read in full before the next
// one is issued (the rule below), so the previous write had reached memory when its successor was
// stored. Consecutive writes have different tags (ordinals mod 4), so a reader that re-reads each
// word until it carries the expected tag reads exactly the write it waited for. The first write of
// a buffer in a program keeps its fence: before it, the buffer holds anything (another program's
// data), whose low bits could match any tag.
//
// Waits by data (GraphOptions::data_waits, kFlagWaitByData): a reader that reads its writer's whole
// output as its input row may, on the GPU, skip the wait for that writer and re-read the row until
// every value carries the write's tag t. Why it is safe. (1) No older write can pass for write t:
// the reader still waits for the writer's own dependencies, among them every reader of write t - 1
// (write-after-read), so once they are done each word holds write t - 1 at least (it was fenced, or
// one of them re-read all of it until its tags were t - 1, and L2 never goes back); its tag differs
// from t, and the first write of a buffer in a program, whose predecessor is anything, never
// qualifies. No newer write can be there either: write t + 1 comes after this reader's reads, by a
// wait or by the same argument one stage on. (2) Seeing every value of write t means every tile of
// the writer has passed its waits and done its reads (it stores its outputs last), which is all the
// skipped wait promised: the reader's other inputs and the writes it may overwrite are ordered by
// the writer's waits, which the reader now waits for itself.
#include <algorithm>

#include "graph/graph.h"

namespace mk {
namespace {

bool writes_tags(Opcode op) {
  return op == Opcode::Embed || op == Opcode::MatvecResidual || op == Opcode::MatvecAct ||
         op == Opcode::AttnPartial || op == Opcode::AttnReduce;
}

// The arena offset an instruction stores its tagged output to (Embed, the matvecs, attention's
// output: AttnPartial's with one KV split, AttnReduce's).
uint32_t out_offset(const Instruction& ins) {
  switch (static_cast<Opcode>(ins.opcode)) {
    case Opcode::Embed: return ins.a.embed.out;
    case Opcode::AttnPartial: return ins.a.attn.part_o;
    case Opcode::AttnReduce: return ins.a.reduce.out;
    default: return ins.a.mv.out;
  }
}

// How a node reads buffer offset `b`: as its input row (QkvRope, the matvecs), as the residual it
// adds to (MatvecResidual's out), or in a way that cannot check tags.
enum class ReadAs { Input, Residual, Unchecked };
ReadAs read_as(const Instruction& ins, uint32_t b) {
  switch (static_cast<Opcode>(ins.opcode)) {
    case Opcode::QkvRope: return ins.a.qkv.in == b ? ReadAs::Input : ReadAs::Unchecked;
    case Opcode::MatvecResidual:
      if (ins.a.mv.in == b) return ReadAs::Input;
      return ins.a.mv.out == b && !(ins.flags & kFlagStore) ? ReadAs::Residual : ReadAs::Unchecked;
    case Opcode::MatvecAct:
    case Opcode::LmHead: return ins.a.mv.in == b ? ReadAs::Input : ReadAs::Unchecked;
    default: return ReadAs::Unchecked;
  }
}

void set_tag(Instruction& ins, uint16_t flag, int shift, uint32_t tag) {
  ins.flags = uint16_t((ins.flags & ~(3u << shift)) | flag | (tag << shift));
}

// Whether every tile of `ins` reads all of `b` as its input row (whole_input_row in isa.h).
bool reads_whole_row(const Instruction& ins, const Buffer& b, uint32_t hidden) {
  const WholeRow row = whole_input_row(ins, hidden);
  return read_as(ins, b.offset) == ReadAs::Input && row.offset == b.offset && row.floats == b.floats;
}

}  // namespace

void assign_handoff_tags(OpGraph& g, bool data_waits) {
  // One token (decode) on one GPU: a prefill's activations may be bf16 and its tiles read rows
  // partly, and a tensor-parallel rank's AllReduce writes the residual stream.
  if (g.dims.n_tokens != 1) return;
  const size_t nb = g.buffers.size();
  std::vector<bool> written(nb, false), refused(nb, false), read(nb, false);
  for (const OpNode& n : g.nodes)
    for (int b : n.reads) read[b] = true;
  for (const OpNode& n : g.nodes) {
    const Opcode op = static_cast<Opcode>(n.proto.opcode);
    const bool fp32 = !(n.proto.flags & (kFlagBf16In | kFlagBf16Out));
    // A writer tags the one output at out_offset; its other outputs, stored without tags and (when
    // it skips the fence) without a fence, must be read by no one: AttnPartial's log-sum-exps when
    // one KV split leaves nothing to merge.
    bool tags = writes_tags(op) && fp32 && !(n.proto.flags & kFlagStore);
    int out = -1;
    for (int b : n.writes) {
      written[b] = true;
      if (g.buffer(b).offset == out_offset(n.proto) && out < 0)
        out = b;
      else if (read[b])
        tags = false;
    }
    for (int b : n.writes)
      if (!tags || b != out) refused[b] = true;
    for (int b : n.reads)
      if (!fp32 || read_as(n.proto, g.buffer(b).offset) == ReadAs::Unchecked) refused[b] = true;
  }
  std::vector<bool> tagged(nb, false);
  for (size_t b = 0; b < nb; ++b) tagged[b] = written[b] && !refused[b] && g.buffers[b].floats > 0;

  // A write may skip its fence only if the buffer is read before its next write (the rule above).
  auto read_before_next_write = [&](size_t i, int b) {
    for (size_t k = i + 1; k < g.nodes.size(); ++k) {
      const OpNode& n = g.nodes[k];
      if (std::find(n.reads.begin(), n.reads.end(), b) != n.reads.end()) return true;
      if (std::find(n.writes.begin(), n.writes.end(), b) != n.writes.end()) return false;
    }
    return false;
  };
  std::vector<uint32_t> writes(nb, 0);
  std::vector<bool> last_fenced(nb, true);
  std::vector<int> writer(nb, -1);
  // For a buffer's last write: whether its previous one is in every word at L2 once the writer's
  // own dependencies are done (it was fenced, or read whole with its tags checked), and whether the
  // last write has been read whole with its tags checked yet.
  std::vector<bool> previous_settled(nb, false), verified(nb, false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    OpNode& n = g.nodes[i];
    // Reads see the buffer's previous write (a residual add reads the value it then replaces).
    for (int b : n.reads) {
      if (!tagged[b] || writes[b] == 0) continue;
      const uint32_t expected = (writes[b] - 1) % 4;
      const bool whole = reads_whole_row(n.proto, g.buffer(b), g.dims.hidden);
      const bool by_data = data_waits && whole && previous_settled[b] && n.wait_by_data < 0 &&
                           std::find(n.deps.begin(), n.deps.end(), writer[b]) != n.deps.end();
      if (by_data) n.wait_by_data = writer[b];
      if (last_fenced[b] && !by_data) continue;
      if (read_as(n.proto, g.buffer(b).offset) == ReadAs::Input) {
        set_tag(n.proto, kFlagCheckIn, kTagInShift, expected);
        if (whole) verified[b] = true;
      } else {
        set_tag(n.proto, kFlagCheckRes, kTagResShift, expected);
      }
    }
    for (int b : n.writes) {
      if (!tagged[b]) continue;
      previous_settled[b] = writes[b] > 0 && (last_fenced[b] || verified[b]);
      verified[b] = false;
      writer[b] = int(i);
      const uint32_t ordinal = writes[b]++;
      set_tag(n.proto, kFlagTagOut, kTagOutShift, ordinal % 4);
      const Opcode op = static_cast<Opcode>(n.proto.opcode);
      const bool no_fence = ordinal > 0 && op != Opcode::Embed && read_before_next_write(i, b);
      if (no_fence) n.proto.flags |= kFlagNoFence;
      last_fenced[b] = !no_fence;
    }
  }
}

}  // namespace mk
