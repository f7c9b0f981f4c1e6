// What a CPU op sees while it runs one instruction: the model dimensions, the weight table, the
// arena, the int32 io slots, the KV cache and the step's parameters. Shared by every op file.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "mk/isa.h"

namespace mk::cpu {

struct OpContext {
  const ModelDims* dims;
  const float* const* weights;  // indexed by weight id
  float* arena;
  int32_t* io;
  float* kv;                    // [layer][k|v][kv_head][max_ctx][head_dim]
  StepParams step;
  bool kv_bf16;                 // K/V rounded to bf16 when stored (to mirror the GPU's cache)
  // Tensor parallelism: every rank's arena, by rank (this one's too), and how many; else null, 1.
  float* const* rank_arenas = nullptr;
  uint32_t tp_size = 1;

  const float* weight(uint32_t id) const { return id == kNone ? nullptr : weights[id]; }
  float* kv_row(uint32_t layer, int which, uint32_t head, uint32_t pos) const {
    const size_t D = dims->head_dim, C = dims->max_ctx, Hkv = dims->n_kv_heads;
    return kv + (((size_t(layer) * 2 + which) * Hkv + head) * C + pos) * D;
  }
};

// Runs one instruction. Barrier has no body: its waits and signal are the executor's business.
void run_instruction(const Instruction& ins, const OpContext& ctx);

// Per-opcode entry points (one file per family).
void run_embed(const Instruction& ins, const OpContext& ctx);
void run_norm(const Instruction& ins, const OpContext& ctx);
void run_qkv_rope(const Instruction& ins, const OpContext& ctx);
void run_attn_partial(const Instruction& ins, const OpContext& ctx);
void run_attn_reduce(const Instruction& ins, const OpContext& ctx);
void run_matvec(const Instruction& ins, const OpContext& ctx);  // MatvecResidual, MatvecAct, LmHead
void run_argmax(const Instruction& ins, const OpContext& ctx);
void run_all_reduce(const Instruction& ins, const OpContext& ctx);    // tensor parallelism
void run_argmax_ranks(const Instruction& ins, const OpContext& ctx);  // tensor parallelism

// Numeric building blocks shared by the ops and the reference forward.
float dot(const float* a, const float* b, size_t n);
// out = norm(x) * w (+ b) over n elements, RMSNorm or LayerNorm as `kind` says.
void normalize(const float* x, float* out, size_t n, NormKind kind, float eps, const float* w, const float* b);
float activate(float x, Activation act);
// Rotates pairs (i, i + D/2), i < pairs, of `v` by the angles of one RoPE table row (cos | sin).
// A part of a head passes v and table_row offset by its first pair.
void apply_rope(float* v, const float* table_row, size_t head_dim, size_t pairs);

// A value as a tagged writer stores it (kFlagTagOut in isa.h): its two lowest mantissa bits replaced
// by the write's tag, as on the GPU, so that the executor's random-order runs can await an input
// row by its tags (kFlagWaitByData); the value itself unchanged without the flag.
inline float tag_output(const Instruction& ins, float v) {
  if (!(ins.flags & kFlagTagOut)) return v;
  return std::bit_cast<float>((std::bit_cast<uint32_t>(v) & ~3u) | flag_tag(ins.flags, kTagOutShift));
}

// Element i of the activation buffer at arena offset `buf`: written as fp32, or rounded to bf16 and
// stored at half the stride when `bf16` (kFlagBf16Out in isa.h).
void store_act(const OpContext& ctx, uint32_t buf, size_t i, float v, bool bf16);

// The input rows [row0, row0 + rows) of a matvec (`bf16`: stored as bf16, kFlagBf16In), normalized
// by `norm` when it names a weight. Returns a pointer to `rows` consecutive rows of `dim` floats
// (the arena itself, or `scratch`).
const float* input_rows(const OpContext& ctx, uint32_t in, InNorm norm, uint32_t row0, uint32_t rows,
                        uint32_t dim, bool bf16, std::vector<float>& scratch);

}  // namespace mk::cpu
