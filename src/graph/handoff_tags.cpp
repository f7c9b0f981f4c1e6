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
#include <algorithm>

#include "graph/graph.h"

namespace mk {
namespace {

bool writes_tags(Opcode op) { return op == Opcode::Embed || op == Opcode::MatvecResidual || op == Opcode::MatvecAct; }

// The arena offset an instruction stores its one output to (Embed and the matvecs).
uint32_t out_offset(const Instruction& ins) {
  return static_cast<Opcode>(ins.opcode) == Opcode::Embed ? ins.a.embed.out : ins.a.mv.out;
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

}  // namespace

void assign_handoff_tags(OpGraph& g) {
  // One token (decode) on one GPU: a prefill's activations may be bf16 and its tiles read rows
  // partly, and a tensor-parallel rank's AllReduce writes the residual stream.
  if (g.dims.n_tokens != 1) return;
  const size_t nb = g.buffers.size();
  std::vector<bool> written(nb, false), refused(nb, false);
  for (const OpNode& n : g.nodes) {
    const Opcode op = static_cast<Opcode>(n.proto.opcode);
    const bool fp32 = !(n.proto.flags & (kFlagBf16In | kFlagBf16Out));
    for (int b : n.writes) {
      written[b] = true;
      if (!writes_tags(op) || !fp32 || (n.proto.flags & kFlagStore) || n.writes.size() != 1 ||
          out_offset(n.proto) != g.buffer(b).offset)
        refused[b] = true;
    }
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
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    OpNode& n = g.nodes[i];
    // Reads see the buffer's previous write (a residual add reads the value it then replaces).
    for (int b : n.reads) {
      if (!tagged[b] || writes[b] == 0 || last_fenced[b]) continue;
      const uint32_t expected = (writes[b] - 1) % 4;
      if (read_as(n.proto, g.buffer(b).offset) == ReadAs::Input)
        set_tag(n.proto, kFlagCheckIn, kTagInShift, expected);
      else
        set_tag(n.proto, kFlagCheckRes, kTagResShift, expected);
    }
    for (int b : n.writes) {
      if (!tagged[b]) continue;
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
