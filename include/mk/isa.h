// The megakernel instruction set: the one format that the scheduler writes and both executors
// (CPU interpreter, CUDA megakernel) read. Plain data only, so the same bytes travel to the device.
#pragma once

#include <stdint.h>

#if defined(__CUDACC__)
#define MK_HD __host__ __device__
#else
#define MK_HD
#endif

namespace mk {

// Every operand that names a weight tensor or an optional buffer uses this to mean "absent".
inline constexpr uint32_t kNone = 0xFFFFFFFFu;

// Number of dependency slots in one instruction. An instruction with more producers gets a
// Barrier instruction in front of it that joins the surplus into one counter (see scheduler).
inline constexpr int kMaxWaits = 3;

enum class Opcode : uint16_t {
  Barrier = 0,     // wait on the listed counters, then signal: joins dependencies
  Embed = 1,       // copy token (and learned position) embedding rows into the residual stream
  Norm = 2,        // RMSNorm or LayerNorm of M rows
  QkvRope = 3,     // fused Q/K/V matvec tile (+bias, +q/k norm, +RoPE), K/V appended to the cache
  AttnPartial = 4, // one (kv head, KV split) of attention for all heads of its GQA group
  AttnReduce = 5,  // log-sum-exp merge of the KV splits for a range of heads
  MatvecResidual = 6, // out[m] += W[rows] . in[m] (+bias): output projection, down projection
  MatvecAct = 7,   // out[m] = act(Wg . in) * (Wu . in)  or  act(Wu . in + b)
  LmHead = 8,      // logits rows of the LM head, plus this tile's (max, argmax)
  Argmax = 9,      // reduce the LM head tiles' partial maxima to the next token id
  AllReduce = 10,  // tensor parallelism: out[m] += the sum over ranks of each rank's partial[m]
  ArgmaxRanks = 11,// tensor parallelism: the next token from every rank's best of its vocabulary slice
  Count
};

// Instruction::flags bits.
inline constexpr uint16_t kFlagStore = 1;         // MatvecResidual: out[m] = W . in (a partial), not +=
inline constexpr uint16_t kFlagWaitAllRanks = 2;  // every wait must hold on every tensor-parallel rank
// Activations in bf16 (prefill programs on the GPU: half the bytes per tensor-core stage, and the
// operand already in the tensor cores' type). The buffer holds bf16 values at half the float
// stride: element i of buffer b is ((bf16*)(arena + b))[i]. The residual stream stays fp32.
inline constexpr uint16_t kFlagBf16In = 4;   // QkvRope, MatvecResidual, MatvecAct, LmHead: `in` is bf16
inline constexpr uint16_t kFlagBf16Out = 8;  // Norm, AttnPartial, AttnReduce, MatvecAct: the output is bf16
// The fence-free handoff of decode programs on one GPU (graph/handoff_tags.cpp, docs/ISA.md). An
// fp32 activation buffer whose writers are Embed, the matvecs and attention (its output: AttnPartial's
// with one KV split, AttnReduce's) and whose readers are QkvRope and the matvecs is *tagged*: every
// write stores each value with its two lowest mantissa bits replaced by the write's tag (its ordinal
// among the buffer's writes in the program, mod 4). A writer of such a buffer (not its first write)
// then signals without the fence that would make its stores visible first, and each reader re-reads
// the words whose tag is not yet the expected one: what it can see instead is only the previous
// write of the buffer, whose tag differs.
inline constexpr uint16_t kFlagTagOut = 16;    // Embed, the matvecs, AttnPartial, AttnReduce: store the output tagged
inline constexpr uint16_t kFlagNoFence = 32;   // signal without a fence (the outputs are tagged)
inline constexpr uint16_t kFlagCheckIn = 64;   // QkvRope and the matvecs: `in` carries tag_in
inline constexpr uint16_t kFlagCheckRes = 128; // MatvecResidual: `out` (the residual added to) carries tag_res
inline constexpr int kTagOutShift = 8, kTagInShift = 10, kTagResShift = 12;  // 2-bit tags in flags
// Waits by data (decode on one GPU, GraphOptions::data_waits, graph/handoff_tags.cpp): the last wait
// names the writer of the tagged input row (kFlagCheckIn), which every tile reads whole. The GPU
// skips that wait and re-reads the row until every value carries its tag; the other waits (the
// writer's own producers) keep older writes of the row out of reach. The CPU executor does the same
// in random order (cpu/executor.cpp) and waits for every counter otherwise.
inline constexpr uint16_t kFlagWaitByData = 1u << 14;
MK_HD inline uint32_t flag_tag(uint16_t flags, int shift) { return (flags >> shift) & 3u; }

enum class NormKind : uint8_t { Rms = 0, Layer = 1 };
enum class Activation : uint8_t { Silu = 0, GeluTanh = 1 };

// A dependency: wait until counter `counter` has reached `count * epoch`, epoch being the
// 1-based step number of this program run. Counters only ever grow, so nothing is reset
// between steps.
struct Wait {
  uint32_t counter;
  uint32_t count;
};

// Operands of each opcode. All buffer operands are offsets in floats into the activation arena;
// all weight operands are indices into the weight table (kNone when absent). Tiles cover
// [tile_begin, tile_end) of the unit named in docs/ISA.md for that opcode.
struct InNorm {      // optional normalization of the input, fused into a matvec tile
  uint32_t weight;   // kNone: the input is used as it is
  uint32_t bias;     // LayerNorm bias, kNone for RMSNorm
};

struct EmbedArgs {
  uint32_t token_table;  // weight: [vocab, hidden]
  uint32_t pos_table;    // weight: [max_pos, hidden] learned positions, or kNone
  uint32_t out;          // arena: [M, hidden]
  uint32_t tokens;       // io slot: M token ids
};

struct NormArgs {
  uint32_t in, out;  // arena: [M, hidden]
  InNorm norm;
  // The products of a split MatvecResidual before it (MatvecArgs::k_splits; 0 or 1: none): arena
  // [k_splits, rows, hidden], added to `in` in range order (and stored there) before the norm.
  uint32_t partial, k_splits, rows;
};

struct QkvRopeArgs {
  uint32_t in;         // arena: [M, hidden] residual stream
  InNorm norm;         // the block's input norm
  uint32_t weight;     // weight: [(Hq + 2 Hkv) * D, hidden]: Q rows, then K rows, then V rows
  uint32_t bias;       // weight: [(Hq + 2 Hkv) * D] or kNone
  uint32_t q_norm;     // weight: [D] per-head RMSNorm of q (Qwen3) or kNone
  uint32_t k_norm;     // weight: [D] or kNone
  uint32_t rope;       // weight: [max_ctx, D] cos (first D/2) and sin (last D/2), or kNone
  uint32_t q_out;      // arena: [M, Hq * D]
  uint32_t head_parts; // P: a unit is part u % P of head u / P (1: whole heads; > 1 only without q/k norm)
  uint32_t token_block;// T: units also split the M tokens into blocks of T (TokenSegments); 0: one block
};

struct AttnPartialArgs {
  uint32_t q;          // arena: [M, Hq * D]
  uint32_t num_splits; // S: the KV range [0, ctx) is cut into this many equal chunks
  uint32_t part_o;     // arena: [splits, M, Hq, D] (with one split: the attention output itself)
  uint32_t part_lse;   // arena: [splits, M, Hq]
  uint32_t window;     // sliding window in positions, 0 for full attention
  uint32_t row_block;  // R: a unit covers this many rows (query tokens); 0: all M rows
  uint32_t head_blocks;// HB: a unit covers group / HB of its GQA group's query heads; 0 or 1: all
                       // of them. HB divides the group (Hq / Hkv). Decode: --attn-head-blocks;
                       // prefill: chosen by the scheduler (kAttnUnitWarps below).
};

// Units of AttnPartial: (kv head, head block, split, block of R rows), row blocks fastest. With
// R = 0 (every row in one block) and HB <= 1, a unit is kv head u / S, split u % S.
MK_HD inline uint32_t attn_row_blocks(uint32_t M, uint32_t R) { return R == 0 || R >= M ? 1 : (M + R - 1) / R; }
MK_HD inline uint32_t attn_block_rows(uint32_t M, uint32_t R) { return R == 0 || R >= M ? M : R; }

// What unit u of an AttnPartial covers: KV head kvh, its group's query heads [g0, g1) (the model's
// heads kvh * group + g), split s, rows from m0 (attn_block_rows of them, fewer in the last block).
struct AttnUnit {
  uint32_t kvh, g0, g1, s, m0;
};
// HB as a count of blocks (0 reads as 1): each unit takes group / HB query heads.
MK_HD inline uint32_t attn_unit_head_blocks(const AttnPartialArgs& a) { return a.head_blocks > 1 ? a.head_blocks : 1; }
MK_HD inline AttnUnit attn_unit(const AttnPartialArgs& a, uint32_t u, uint32_t group, uint32_t M) {
  const uint32_t B = attn_row_blocks(M, a.row_block), S = a.num_splits, HB = attn_unit_head_blocks(a);
  const uint32_t per = group / HB, hb = u / B / S % HB;
  return {u / B / S / HB, hb * per, (hb + 1) * per, u / B % S, (u % B) * attn_block_rows(M, a.row_block)};
}

// The GPU's prefill attention (cuda/ops/attention_mma.cuh) gives each warp of a unit 16 rows of
// one query head at a time, over all of the unit's keys, in rounds of the block's 8 warps; the
// scheduler sizes prefill head blocks so that a unit takes one round.
constexpr uint32_t kAttnWarpRows = 16, kAttnUnitWarps = 8;
// A unit whose items fill at most 1 / kAttnKeyParts of the warps walks each item's keys in that
// many parts at once, one warp each, merged at the end (attention_mma.cuh).
constexpr uint32_t kAttnKeyParts = 2;

struct AttnReduceArgs {
  uint32_t part_o, part_lse, num_splits;
  uint32_t out;        // arena: [M, Hq * D]
};

struct MatvecArgs {    // MatvecResidual, MatvecAct and LmHead share this shape
  uint32_t in;         // arena: [M, in_dim]
  InNorm norm;
  uint32_t weight;     // weight: [out_dim, in_dim] (up weight for MatvecAct)
  uint32_t bias;       // weight: [out_dim] or kNone
  uint32_t gate;       // MatvecAct: gate weight [out_dim, in_dim], kNone when not gated
  uint32_t gate_bias;  // MatvecAct: gate bias [out_dim] or kNone
  uint32_t out;        // arena: [M_out, out_dim]
  uint32_t in_dim, out_dim;
  uint32_t in_row0;    // first input row used (LM head of the last prompt token only)
  uint32_t rows;       // M_out: how many input rows, from in_row0, are processed
  uint32_t partial;    // LmHead: arena [tiles, rows, 2] of (max value, index as float bits);
                       // a split MatvecResidual: arena [k_splits, rows, out_dim], each range's product
  uint32_t token_block;// T: units also split the rows into blocks of T (TokenSegments); 0: one block
  uint32_t k_splits;   // MatvecResidual in prefill: units also split in_dim into this many ranges
                       // (k_range), 0 or 1: none. A tile stores its range's product (the bias in
                       // range 0's) to `partial` and leaves `out` alone: the Norm that follows adds
                       // the ranges' products to it in range order (NormArgs), so that the sums do
                       // not depend on the order the tiles ran in.
};

// The columns each of k_splits ranges over K takes: whole 64-column stages of the GEMM passes (the
// last range may be shorter, and ranges past K empty).
MK_HD inline uint32_t k_range_chunk(uint32_t K, uint32_t k_splits) {
  const uint32_t n = k_splits > 1 ? k_splits : 1;
  return ((K + n - 1) / n + 63) / 64 * 64;
}

// Range s of k_splits over K columns: [*k0, *k1).
MK_HD inline void k_range(uint32_t K, uint32_t k_splits, uint32_t s, uint32_t* k0, uint32_t* k1) {
  const uint32_t chunk = k_range_chunk(K, k_splits);
  *k0 = s * chunk < K ? s * chunk : K;
  *k1 = *k0 + chunk < K ? *k0 + chunk : K;
}

// Prefill tiles of QkvRope and the matvec family may split by tokens as well as by units. With a
// token block T > 0 and n units per block (heads or head parts; output rows), unit u of the op is
// unit u % n for tokens [(u / n) T, min(M, (u / n + 1) T)). A split matvec (k_splits S > 1) repeats
// that S times: unit u is in K range (u / n) / B of k_range, token block (u / n) % B (B blocks). A
// tile's units then fall into at most a few segments of one token block each; TokenSegments walks them:
//   for (TokenSegments s(tile_begin, tile_end, n, T, M); s.next();) use s.u_begin, s.u_end, s.m_begin, s.m_end
struct TokenSegments {
  uint32_t u, tile_end, n, T, M, B;
  uint32_t u_begin = 0, u_end = 0, m_begin = 0, m_end = 0;  // the current segment (units within a block)
  uint32_t k_split = 0;                                      // and its K range
  MK_HD TokenSegments(uint32_t begin, uint32_t end, uint32_t n_units, uint32_t block, uint32_t tokens)
      : u(begin), tile_end(end), n(n_units), T(block ? block : tokens ? tokens : 1), M(tokens), B((tokens + T - 1) / T) {}
  MK_HD bool next() {
    if (u >= tile_end) return false;
    const uint32_t b = u / n, block_end = (b + 1) * n;
    u_begin = u % n;
    u_end = (tile_end < block_end ? tile_end : block_end) - b * n;
    m_begin = b % B * T;
    m_end = M < m_begin + T ? M : m_begin + T;
    k_split = b / B;
    u = b * n + u_end;
    return true;
  }
};

struct ArgmaxArgs {
  uint32_t partial;      // arena: as LmHead's partial
  uint32_t num_partials; // LM head tiles
  uint32_t rows;         // one token per row
  uint32_t out_token;    // io slot for the result
  uint32_t best;         // kNone; or (tensor parallelism) arena [rows, 2]: (max, index + index_offset)
  uint32_t index_offset; //   written there instead of the token: this rank's first vocabulary row
};

// Units of AllReduce: columns of the [rows, cols] stream, every row.
struct AllReduceArgs {
  uint32_t partial;      // arena: [rows, cols], at the same offset on every rank
  uint32_t out;          // arena: [rows, cols], this rank's copy of the residual stream
  uint32_t rows, cols;
};

struct ArgmaxRanksArgs {
  uint32_t best;         // arena [ranks][rows, 2]: rank r's Argmax writes slice r of its own; read from
                         // every rank's arena (in the kernel), or from this one's once gathered there
  uint32_t rows;
  uint32_t out_token;    // io slot for the result
  uint32_t ranks;
};

struct alignas(16) Instruction {
  uint16_t opcode;     // Opcode
  uint16_t layer;      // for dumps, traces and the KV cache of QkvRope / AttnPartial
  uint16_t n_waits;
  uint16_t flags;      // kFlag* bits
  uint32_t signal;     // counter incremented by one when this instruction is done
  uint32_t node;       // op-graph node this tile belongs to (dumps, traces)
  Wait waits[kMaxWaits];
  uint32_t tile_begin, tile_end, tile_index;
  uint32_t cost_bytes; // scheduler's estimate of bytes read, for dumps and balancing reports
  union {
    uint32_t raw[16];
    EmbedArgs embed;
    NormArgs norm;
    QkvRopeArgs qkv;
    AttnPartialArgs attn;
    AttnReduceArgs reduce;
    MatvecArgs mv;
    ArgmaxArgs argmax;
    AllReduceArgs all_reduce;
    ArgmaxRanksArgs argmax_ranks;
  } a;
};

static_assert(sizeof(Instruction) == 128, "instructions are fetched as 128-byte records");
static_assert(sizeof(MatvecArgs) <= sizeof(uint32_t) * 16, "operands overflow the record");
static_assert(sizeof(QkvRopeArgs) <= sizeof(uint32_t) * 16, "operands overflow the record");

// Row `t` (of 2 * pw, pw = D / 2 / P rotary pairs) of QkvRope unit `u`, as a row of the fused
// Q/K/V matrix. A unit holds whole rotary pairs: its first pw rows are head rows part * pw + i, the
// next pw the rows D/2 + part * pw + i that RoPE rotates with them. P = 1 is the whole head, in order.
MK_HD inline uint32_t qkv_unit_row(uint32_t u, uint32_t t, uint32_t D, uint32_t P) {
  const uint32_t pw = D / 2 / P, head = u / P, part = u % P;
  return head * D + (t < pw ? part * pw + t : D / 2 + part * pw + (t - pw));
}

// The input row a decode QkvRope or matvec instruction reads whole, if it does (waits by data:
// graph/handoff_tags.cpp marks them, the CPU executor awaits their tags): its arena offset and its
// length in floats; length 0 where its tiles read parts of it (a token block, ranges of K).
struct WholeRow { uint32_t offset; uint64_t floats; };
MK_HD inline WholeRow whole_input_row(const Instruction& ins, uint32_t hidden) {
  switch (static_cast<Opcode>(ins.opcode)) {
    case Opcode::QkvRope: return {ins.a.qkv.in, ins.a.qkv.token_block == 0 ? hidden : 0u};
    case Opcode::MatvecResidual:
    case Opcode::MatvecAct:
    case Opcode::LmHead: {
      const MatvecArgs& m = ins.a.mv;
      return {m.in, m.k_splits <= 1 && m.in_row0 == 0 ? uint64_t(m.in_dim) * m.rows : 0u};
    }
    default: return {0, 0};
  }
}

// Model dimensions that both executors read at run time (the generic path). The specialized
// GPU path instantiates the same op templates with these as compile-time constants.
struct ModelDims {
  uint32_t hidden, intermediate, n_layers, n_heads, n_kv_heads, head_dim, vocab;
  uint32_t max_ctx;     // KV cache capacity in positions
  uint32_t n_tokens;    // M: tokens processed per program run (1 for decode)
  uint8_t norm_kind;    // NormKind
  uint8_t activation;   // Activation
  uint8_t pad_[2];
  float norm_eps;
  float qk_norm_eps;
  float attn_scale;     // 1/sqrt(head_dim) unless the model says otherwise
};

// Per-run parameters, written by the host before each program run.
struct StepParams {
  uint32_t epoch;  // 1-based count of runs of this program (counter targets scale with it)
  uint32_t pos;    // position of the first of the M tokens
};

MK_HD inline const char* opcode_name(uint16_t op) {
  switch (static_cast<Opcode>(op)) {
    case Opcode::Barrier: return "barrier";
    case Opcode::Embed: return "embed";
    case Opcode::Norm: return "norm";
    case Opcode::QkvRope: return "qkv_rope";
    case Opcode::AttnPartial: return "attn_partial";
    case Opcode::AttnReduce: return "attn_reduce";
    case Opcode::MatvecResidual: return "matvec_residual";
    case Opcode::MatvecAct: return "matvec_act";
    case Opcode::LmHead: return "lm_head";
    case Opcode::Argmax: return "argmax";
    case Opcode::AllReduce: return "all_reduce";
    case Opcode::ArgmaxRanks: return "argmax_ranks";
    default: return "?";
  }
}

}  // namespace mk
