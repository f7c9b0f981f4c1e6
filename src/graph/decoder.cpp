// build_graph: the forward pass of a pre-norm decoder (every supported architecture) for M tokens,
// as ops over named buffers. Architecture differences are flags of ModelConfig, not code paths.
#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <string>

#include "graph/graph.h"
#include "graph/shard.h"
#include "model/error.h"

namespace mk {
namespace {

// The LM head writes one (max, index) pair per tile and row; the partial buffer is sized for this
// many tiles, and the scheduler never cuts the LM head finer.
constexpr uint32_t kMaxLmTiles = 1024;

// Prefill tiles (from this many tokens on) hold at most this many weight rows: one tensor-core pass
// of the GPU (kGemmN in cuda/ops/mma_gemm.cuh), which reuses each row for all the tile's tokens.
// Shorter tiles would spread over more SMs, but each one reads every token's activations again.
// Gated tiles (up and gate rows) take a pass twice as wide (kGemmWideN): 64 outputs, 128 rows.
constexpr uint32_t kPrefillTokens = 16, kPrefillTileRows = 64, kPrefillGatedOutputs = 64;
// ... or twice that where there are enough of them to fill the SMs: a Hopper GPU takes such a tile
// in one pass of 256 rows (kGemmWgmmaWideN), which reads each activation stage for twice the rows.
// At least 1.5 waves of them, so that the last wave's idle SMs cost at most a quarter. (Other GPUs
// take them as two passes of 128 rows: the same work, in half as many tiles.)
constexpr uint32_t kPrefillWideGatedOutputs = 128;
// Rows of a split projection's tile (residual(), below): one 256-row pass on Hopper.
constexpr uint32_t kPrefillSplitRows = 256;
constexpr uint32_t kPrefillSplitMinK = 512;
constexpr double kPrefillWideGatedWaves = 1.5;
// A short last wave of gated tiles (Qwen2.5-1.5B's 512-token gate/up: 280 tiles of 128 outputs, 16
// past two waves of 132) runs in pieces of at least this many outputs, which take the narrowest
// pass (64 rows: 32 up, 32 gate) at about half a 256-row pass's time (bench/gemm_rate.cu), where the
// whole tiles kept 116 SMs idle for a third wave of 48 us (H100, session 32).
constexpr uint32_t kPrefillGatedTailOutputs = 32;
// QKV tiles take up to 96 rows (kGemmQkvN): Llama-3.2-1B's 3072 rows by 4 token blocks make 128
// tiles, one wave of 132 SMs, where tiles of 64 made 192: two waves, the second one half empty, with
// attention waiting behind it (135 us of a 763 us layer at 512 tokens, H200). Fewer token blocks
// take narrower tiles (below).
constexpr uint32_t kPrefillQkvRows = 96;
// Other prefill tiles (o_proj, down, a plain MLP's up) take 64, 128 or 256 rows, one pass each on
// Hopper (kGemmN, kGemmWideN, kGemmWgmmaWideN), whichever makes the fewest waves of the SMs times
// its pass's time. A pass is bound by what it reads from L2, its 128 tokens' activations and its
// rows' weights: with every SM in a pass, bench/gemm_rate.cu took 16.7 / 25.2 / 41.5 us at 64 /
// 128 / 256 rows (H100, K = 2048, session 32). So Llama-3.2-3B's 512-token o_proj and down (3072
// rows by 4 token blocks) take 96 tiles of 128, one wave, rather than 192 of 64, two; Llama-3.2-1B's
// (2048 rows) keep 128 tiles of 64, and at 1024 tokens take 128 of 128. (GPUs without wgmma take
// the wider tiles as passes of 128 rows: the same work in fewer tiles.)
struct RowTile {
  uint32_t rows;
  double pass_us;
};
constexpr RowTile kPrefillRowTiles[] = {{kPrefillTileRows, 16.7}, {128, 25.2}, {256, 41.5}};
uint32_t prefill_row_tile(uint32_t rows, uint32_t blocks, uint32_t num_sms) {
  uint32_t best = kPrefillTileRows;
  double best_us = std::numeric_limits<double>::infinity();
  for (const RowTile& t : kPrefillRowTiles) {  // narrowest first: it wins a tie
    const uint64_t tiles = uint64_t(blocks) * ((rows + t.rows - 1) / t.rows);
    const double us = double((tiles + num_sms - 1) / num_sms) * t.pass_us;
    if (us < best_us) best = t.rows, best_us = us;
  }
  return best;
}
// Prefill tiles also split the prompt into blocks of this many tokens (one tensor-core pass,
// kGemmM): with whole-prompt tiles, a 512-token prefill had 32 o_proj tiles of 660 us each, and
// most SMs waited on them.
constexpr uint32_t kPrefillTokenBlock = 128;
// Prefill attention: every row has its own keys to cover, so the work splits by blocks of query rows
// (one KV split, no merge) rather than by KV chunks; 32 rows are two tensor-core row tiles.
constexpr uint32_t kPrefillAttnRows = 32;

// A decode layer's attention runs on (KV head, head block, KV split) units. With few KV heads
// (Qwen2.5-1.5B's 2) whole groups leave too few units for attention's latency chain, so the
// default takes blocks of fewer query heads until a position has this many units (or as many as
// blocks of 2 heads give); a block keeps at least 2 heads, since each block reads its KV head's
// keys again. H100, session 29, two interleaved rounds: Qwen2.5-1.5B in 3 blocks of 2 heads
// -7.6 / -9.6 / -4.5 / -4.9 / -2.3% at contexts 32 / 256 / 1024 / 2048 / 4096; 6 blocks of 1 lost
// (+2 / +8% at 32 / 1024, session 28); Llama-3.2-1B's 8 KV heads in 2 blocks lost too (+2% at
// 1024, +6.5% at 4096).
// From kLongSpanKeys positions on (graph.h) a unit's keys outweigh that latency, and blocks of 3
// heads (4 units) beat blocks of 2 on Qwen2.5-1.5B: 1.797 / 1.903 against 1.821 / 1.966 ms at
// contexts 2048 / 4096, two rounds alike (H100, session 29); at 256 they lost (1.662 against 1.634).
constexpr uint32_t kDecodeMinAttnUnits = 6, kDecodeMinAttnUnitsLong = 4;

// Decode's head blocks: as asked (--attn-head-blocks), else by kDecodeMinAttnUnits (from
// kLongSpanKeys positions on, kDecodeMinAttnUnitsLong); 1 for other programs, whose head blocks
// build_graph chooses (whole groups for short prompts, prefill_head_blocks for long ones). `c` is
// the rank's config (its KV heads).
uint32_t decode_head_blocks(const ModelConfig& c, const GraphOptions& o) {
  if (o.n_tokens != 1) return 1;
  if (o.attn_head_blocks) return o.attn_head_blocks;
  const uint32_t group = c.num_heads / c.num_kv_heads;
  const uint32_t units = long_span(o) ? kDecodeMinAttnUnitsLong : kDecodeMinAttnUnits;
  uint32_t blocks = 1;  // the fewest that reach the units, else the most that keep 2 heads a block
  for (uint32_t hb = 2; group / hb >= 2 && c.num_kv_heads * blocks < units; ++hb)
    if (group % hb == 0) blocks = hb;
  return blocks;
}

// The fewest head blocks (a divisor of the group) whose unit's items, a query head by 16 rows each,
// fit one round of kAttnUnitWarps warps; the whole group when none does. Then, where more blocks
// would leave a unit half the warps' items, so that the GPU walks each item's keys in two halves
// at once (kAttnKeyParts in cuda/ops/attention_mma.cuh), and all the units (`units_per_block` a
// head block) would still run at once on `num_sms` SMs: the fewest such blocks. Qwen2.5-1.5B at
// 512 tokens: 3 blocks of 2 heads (96 units) rather than 2 of 3 (64); Llama-3.2-1B keeps its whole
// groups of 4 (2 blocks would make 256 units).
uint32_t prefill_head_blocks(uint32_t group, uint32_t rows, uint32_t units_per_block, uint32_t num_sms) {
  const uint32_t row_tiles = (rows + kAttnWarpRows - 1) / kAttnWarpRows;
  uint32_t blocks = group;
  for (uint32_t hb = 1; hb < group; ++hb)
    if (group % hb == 0 && group / hb * row_tiles <= kAttnUnitWarps) {
      blocks = hb;
      break;
    }
  for (uint32_t hb = blocks; hb <= group; ++hb)
    if (group % hb == 0 && group / hb * row_tiles * kAttnKeyParts <= kAttnUnitWarps)
      return uint64_t(hb) * units_per_block <= num_sms ? hb : blocks;
  return blocks;
}

uint32_t wid(const OpGraph& g, const std::string& name) {
  int id = g.weight_id(name);
  return id < 0 ? kNone : static_cast<uint32_t>(id);
}

ModelDims make_dims(const ModelConfig& c, const GraphOptions& o) {
  ModelDims d{};
  d.hidden = c.hidden_size;
  d.intermediate = c.intermediate_size;
  d.n_layers = c.num_layers;
  d.n_heads = c.num_heads;
  d.n_kv_heads = c.num_kv_heads;
  d.head_dim = c.head_dim;
  d.vocab = c.vocab_size;
  d.max_ctx = o.max_ctx;
  d.n_tokens = o.n_tokens;
  d.norm_kind = static_cast<uint8_t>(c.norm);
  d.activation = static_cast<uint8_t>(c.act);
  d.norm_eps = c.norm_eps;
  d.qk_norm_eps = c.norm_eps;
  d.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  return d;
}

}  // namespace

uint32_t choose_kv_splits(const ModelConfig& c, const GraphOptions& o) {
  uint32_t s = o.kv_splits;
  if (!s) {
    if (o.n_tokens >= kPrefillTokens) return 1;  // prefill splits by rows (kPrefillAttnRows)
    if (program_span(o) <= kSingleSplitKeys) return 1;
    // Enough (kv head, head block, split) units to give every SM one, but no split shorter than 32
    // positions at full context.
    s = std::max<uint32_t>(1, o.num_sms / (c.num_kv_heads * decode_head_blocks(c, o)));
    s = std::min<uint32_t>(s, std::max<uint32_t>(1, o.max_ctx / 32));
  }
  // The partial results of a prefill kept to a few tens of MB, a forced count too.
  const uint64_t per_split = uint64_t(o.n_tokens) * c.num_heads * c.head_dim;
  s = static_cast<uint32_t>(std::min<uint64_t>(s, std::max<uint64_t>(1, (8u << 20) / per_split)));
  return s;
}

OpGraph build_graph(const ModelConfig& c, const GraphOptions& o) {
  if (o.n_tokens == 0) throw Error("build_graph: n_tokens must be at least 1");
  if (o.max_ctx == 0) throw Error("build_graph: max_ctx must be at least 1");
  if (c.learned_pos && o.max_ctx > static_cast<uint32_t>(c.max_position_embeddings))
    throw Error("context " + std::to_string(o.max_ctx) + " exceeds the model's " +
                std::to_string(c.max_position_embeddings) + " learned positions");
  if (c.gated_mlp && c.mlp_bias)
    throw Error(std::string(arch_name(c.arch)) + ": mlp_bias with a gated MLP is not supported");

  // With tensor parallelism the graph is one rank's: its heads, its share of the MLP and of the
  // vocabulary (docs/TENSOR_PARALLEL.md); `c` keeps the whole model's sizes for the weights.
  const TpSplit tp = tp_split(c, o.tp_size, o.tp_rank);
  ModelConfig rank_config = c;
  rank_config.num_heads = tp.heads;
  rank_config.num_kv_heads = tp.kv_heads;
  rank_config.intermediate_size = tp.inter;
  OpGraph g;
  g.config = c;
  g.dims = make_dims(rank_config, o);
  g.dims.vocab = c.vocab_size;
  if (c.arch == Arch::Gpt2)
    declare_gpt2_weights(c, g);
  else
    declare_llama_weights(c, g);
  shard_weights(g, tp);
  if (!c.learned_pos)
    g.add_weight({"rope", {int64_t(o.max_ctx), c.head_dim}, WeightDecl::Kind::RopeTable, {}, false});

  const uint32_t M = o.n_tokens, H = c.hidden_size, I = tp.inter, D = c.head_dim;
  const uint32_t Hq = tp.heads, Hkv = tp.kv_heads, V = tp.vocab;
  const bool sharded = tp.size > 1;
  const uint32_t S = choose_kv_splits(rank_config, o);
  const uint32_t R = M >= kPrefillTokens ? kPrefillAttnRows : 0;  // AttnPartial's row blocks
  // Attention units may each take a block of a GQA group's query heads: more units, on more SMs,
  // each with fewer heads to go through. Decode: as asked or decode_head_blocks' default. Prefill: as few
  // blocks as let a unit's (head, 16 rows) items fit one round of the GPU block's warps, since a
  // round walks all of the unit's keys (Qwen2.5-1.5B's 6 heads of 2 row tiles took two rounds on
  // 2 KV heads x 16 row blocks = 32 SMs; in 2 blocks, one round on 64).
  const uint32_t HB = M == 1 ? decode_head_blocks(rank_config, o)
                     : R     ? prefill_head_blocks(Hq / Hkv, R, Hkv * S * attn_row_blocks(M, R), o.num_sms)
                             : 1;
  if (HB > 1 && (Hq / Hkv) % HB != 0)
    throw Error("--attn-head-blocks " + std::to_string(HB) + " does not divide the " + std::to_string(Hq / Hkv) +
                " query heads of a KV head's group");
  const uint32_t m_out = o.all_logits ? M : 1;
  const uint32_t T = M >= kPrefillTokens && M > kPrefillTokenBlock ? kPrefillTokenBlock : 0;  // token blocks
  const uint32_t blocks = T ? (M + T - 1) / T : 1;
  const double wb = o.weight_bytes;
  const bool bf16_acts = o.bf16_activations && M >= kPrefillTokens;

  const int x = g.add_buffer("x", uint64_t(M) * H);
  const int xn = o.fuse_norms && !bf16_acts ? -1 : g.add_buffer("xn", uint64_t(M) * H);
  const int q = g.add_buffer("q", uint64_t(M) * Hq * D);
  const int attn = g.add_buffer("attn", uint64_t(M) * Hq * D);
  // With one split the partial output is the attention output, and no merge runs.
  const int part_o = S > 1 ? g.add_buffer("part_o", uint64_t(S) * M * Hq * D) : attn;
  const int part_lse = g.add_buffer("part_lse", uint64_t(S) * M * Hq);
  const int act = g.add_buffer("act", uint64_t(M) * I);
  // A norm is its own Norm instruction (rather than folded into the matvec tiles that read it) with
  // bf16 activations, but for the final norm before the LM head, or when norms are not fused.
  auto norm_is_node = [&](int layer) { return !(o.fuse_norms && !(bf16_acts && layer >= 0)); };
  // Prefill's residual projections may split by ranges of their input (residual(), below), in
  // tiles of split_rows rows: kPrefillSplitRows or the largest smaller power of two (at least 8,
  // the passes' weight groups) that divides H.
  uint32_t split_rows = kPrefillSplitRows;
  while (split_rows >= 8 && H % split_rows != 0) split_rows /= 2;
  // How many ranges a projection from in_dim inputs takes (0 or 1: none). Only where its tiles
  // of kPrefillTileRows rows would fill at most half the SMs (a short prompt's few token blocks),
  // and only where a Norm instruction follows, which adds the ranges' products to the residual
  // (NormArgs). As many ranges as keep the tiles within one wave of the SMs, of at least
  // kPrefillSplitMinK columns, or in_dim / H where that is more (the MLP's down, also in small
  // models); none past the last whole 64-column stage (k_range).
  auto split_count = [&](uint32_t in_dim, int next_norm_layer) -> uint32_t {
    if (M < kPrefillTokens || sharded || split_rows < 8 || !o.split_k || !norm_is_node(next_norm_layer)) return 0;
    if (uint64_t(H / kPrefillTileRows) * blocks * 2 > o.num_sms) return 0;
    const uint32_t row_tiles = H / split_rows, sms_per_range = row_tiles * blocks;
    const uint32_t n = std::min(std::max(in_dim / H, in_dim / kPrefillSplitMinK), o.num_sms / sms_per_range);
    if (n < 2) return 0;
    const uint32_t chunk = k_range_chunk(in_dim, n);
    return (in_dim + chunk - 1) / chunk;  // the ranges that are not empty
  };
  const uint32_t max_splits = std::max(split_count(Hq * D, 0), split_count(I, 0));
  const int split_part = max_splits > 1 ? g.add_buffer("split_part", uint64_t(max_splits) * M * H) : -1;
  uint32_t pending_splits = 0;  // the last split projection's ranges, for the Norm after it
  // Every rank's buffers have the same sizes (the vocabulary slice rounded up), so that a buffer has
  // the same offset on every rank: AllReduce and ArgmaxRanks read their peers' at their own.
  const int logits = g.add_buffer("logits", uint64_t(m_out) * tp.vocab_stride);
  const int lm_partial = g.add_buffer("lm_partial", uint64_t(kMaxLmTiles) * m_out * 2);
  const int tp_best = sharded ? g.add_buffer("tp_best", uint64_t(tp.size) * m_out * 2) : -1;
  std::vector<int> tp_partial;  // per layer: o_proj's partial, then down's
  for (int l = 0; sharded && l < c.num_layers; ++l) {
    tp_partial.push_back(g.add_buffer("tp_o." + std::to_string(l), uint64_t(M) * H));
    tp_partial.push_back(g.add_buffer("tp_down." + std::to_string(l), uint64_t(M) * H));
  }
  const int tokens_in = g.add_buffer("tokens_in", 0);
  const int tokens_out = g.add_buffer("tokens_out", 0);
  g.tokens_in = 0;
  g.tokens_out = M;
  g.io_slots = M + m_out;
  g.logits_rows = m_out;
  g.logits_cols = V;
  std::vector<int> kv(c.num_layers);
  for (int l = 0; l < c.num_layers; ++l) kv[l] = g.add_buffer("kv." + std::to_string(l), 0);
  g.finalize();  // arena offsets are needed below; dependencies are derived again at the end
  auto off = [&](int b) { return g.buffer(b).offset; };
  // The buffers that hold bf16 (the inputs of the block's matrix products); sized as fp32 all the same.
  auto is_bf16 = [&](int b) { return bf16_acts && (b == xn || b == attn || b == act); };
  auto act_bytes = [&](int b) { return is_bf16(b) ? 2.0 : 4.0; };
  auto bf16_flags = [&](int in_buf, int out_buf) {
    return uint16_t((is_bf16(in_buf) ? kFlagBf16In : 0) | (is_bf16(out_buf) ? kFlagBf16Out : 0));
  };

  auto node = [&](std::string name, Opcode op, int layer) {
    OpNode n;
    n.name = std::move(name);
    n.proto.opcode = static_cast<uint16_t>(op);
    n.proto.layer = static_cast<uint16_t>(layer < 0 ? 0xFFFF : layer);
    return n;
  };
  // Units of `per_block` in a row make a token block (block of unit u: u % period / per_block),
  // where the prompt has several (T > 0).
  auto set_token_blocks = [&](OpNode& n, uint32_t per_block, uint32_t period) {
    if (blocks > 1) n.block_units = per_block, n.block_period = period;
  };
  // A norm either becomes its own node writing xn, or an InNorm folded into its consumer. With bf16
  // activations the block norms are their own nodes (their output is the bf16 operand); the final
  // norm, before the LM head's one row, stays as `fuse_norms` says.
  auto norm_input = [&](const std::string& prefix, const std::string& weight, int layer, int in_buf,
                        InNorm& fused) -> int {
    const InNorm norm{wid(g, weight), wid(g, weight + "_bias")};
    if (!norm_is_node(layer)) {
      assert(pending_splits == 0 && "a split projection is followed by a Norm instruction (split_count)");
      fused = norm;
      return in_buf;
    }
    OpNode n = node(prefix + "norm", Opcode::Norm, layer);
    n.proto.a.norm = {off(in_buf), off(xn), norm, kNone, 0, M};
    n.proto.flags |= bf16_flags(in_buf, xn);
    n.units = M;  // rows
    set_token_blocks(n, T, M);
    n.bytes_per_unit = H * (act_bytes(in_buf) + act_bytes(xn));
    n.reads = {in_buf};
    n.writes = {xn};
    if (pending_splits > 1) {  // the split projection before: its products join the residual here
      n.proto.a.norm.partial = off(split_part);
      n.proto.a.norm.k_splits = pending_splits;
      n.bytes_per_unit += double(H) * pending_splits * act_bytes(split_part);
      n.reads.push_back(split_part);
      n.writes.push_back(in_buf);
      pending_splits = 0;
    }
    g.add_node(std::move(n));
    fused = {kNone, kNone};
    return xn;
  };
  auto matvec = [&](std::string name, Opcode op, int layer, int in_buf, InNorm norm, uint32_t in_dim,
                    uint32_t out_dim, int out_buf, uint32_t weight, uint32_t bias, uint32_t gate,
                    uint32_t gate_bias) {
    OpNode n = node(std::move(name), op, layer);
    MatvecArgs& a = n.proto.a.mv;
    a = {};
    a.in = off(in_buf);
    a.norm = norm;
    a.weight = weight;
    a.bias = bias;
    a.gate = gate;
    a.gate_bias = gate_bias;
    a.out = off(out_buf);
    a.in_dim = in_dim;
    a.out_dim = out_dim;
    a.in_row0 = 0;
    a.rows = M;
    a.partial = kNone;
    a.token_block = T;
    n.proto.flags |= bf16_flags(in_buf, out_buf);
    n.units = out_dim * blocks;
    n.token_blocks = blocks;
    set_token_blocks(n, out_dim, n.units);
    n.unit_align = 8;
    n.fixed_bytes = double(std::min(M, T ? T : M)) * in_dim * act_bytes(in_buf);
    n.bytes_per_unit = double(in_dim) * wb * (gate != kNone ? 2 : 1);
    n.reads = {in_buf};
    n.writes = {out_buf};
    if (op == Opcode::MatvecResidual) n.reads.push_back(out_buf);
    if (M >= kPrefillTokens && gate == kNone) n.tile_units = prefill_row_tile(out_dim, blocks, o.num_sms);
    if (M >= kPrefillTokens && gate != kNone) {
      const double wide_tiles = double(blocks) * ((out_dim + kPrefillWideGatedOutputs - 1) / kPrefillWideGatedOutputs);
      n.tile_units = wide_tiles >= kPrefillWideGatedWaves * o.num_sms ? kPrefillWideGatedOutputs : kPrefillGatedOutputs;
      n.tail_units = kPrefillGatedTailOutputs;
    }
    return n;
  };

  // A residual projection: out += W . in on one rank; with tensor parallelism each rank stores its
  // partial (its heads' or its MLP slice's columns) and an AllReduce adds every rank's into x.
  // next_norm_layer: the layer of the norm that reads the residual next (-1: the final norm).
  auto residual = [&](const std::string& name, int layer, int in_buf, uint32_t in_dim, uint32_t weight, uint32_t bias,
                      int partial, int next_norm_layer) {
    if (partial < 0) {
      OpNode n = matvec(name, Opcode::MatvecResidual, layer, in_buf, {kNone, kNone}, in_dim, H, x, weight, bias,
                        kNone, kNone);
      // A short prompt's projection takes tiles of split_rows rows by a range of its input
      // (split_count), so that it covers the SMs and each pass reads the activations for 4x the
      // rows of a 64-row tile (prefill's passes are bound by what they read from L2). The ranges'
      // products go to split_part, and the Norm that follows adds them to x in range order: the
      // same sums whichever tile ran last, where adding each range's straight into x as the tiles
      // finish made the prefill's results vary from run to run (session 19).
      const uint32_t splits = split_count(in_dim, next_norm_layer);
      if (splits > 1) {
        MatvecArgs& a = n.proto.a.mv;
        a.k_splits = splits;
        a.partial = off(split_part);
        n.units *= splits;
        n.token_blocks = blocks * splits;
        n.tile_units = split_rows;
        n.fixed_bytes /= splits;
        n.bytes_per_unit /= splits;
        n.reads = {in_buf};
        n.writes = {split_part};
        pending_splits = splits;
      }
      g.add_node(std::move(n));
      return;
    }
    OpNode n = matvec(name, Opcode::MatvecResidual, layer, in_buf, {kNone, kNone}, in_dim, H, partial, weight, bias,
                      kNone, kNone);
    n.proto.flags |= kFlagStore;
    n.reads = {in_buf};
    g.add_node(std::move(n));
    if (o.tp_launches) g.begin_launch({Exchange::Kind::Sum, off(partial), M * H});
    OpNode r = node(name + "_all_reduce", Opcode::AllReduce, layer);
    r.proto.a.all_reduce = {off(partial), off(x), M, H};
    if (!o.tp_launches) r.proto.flags |= kFlagWaitAllRanks;
    r.units = H;
    r.unit_align = 8;
    r.bytes_per_unit = double(M) * tp.size * act_bytes(partial);
    r.reads = {partial, x};
    r.writes = {x};
    g.add_node(std::move(r));
  };

  {
    OpNode n = node("embed", Opcode::Embed, -1);
    n.proto.a.embed = {wid(g, "embed"), wid(g, "pos_embed"), off(x), g.tokens_in};
    // Tiles of tokens: a 512-token prompt's rows on one SM took 2.3 ms of a 17 ms prefill (H200, 1B
    // shape).
    n.units = M;
    set_token_blocks(n, T, M);
    n.bytes_per_unit = double(H) * (wb * (c.learned_pos ? 2 : 1) + act_bytes(x));
    n.reads = {tokens_in};
    n.writes = {x};
    g.add_node(std::move(n));
  }
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string L = std::to_string(l) + ".", P = "L" + std::to_string(l) + ".";
    InNorm fused{};
    int in = norm_input(P + "attn_", L + "attn_norm", l, x, fused);
    {
      OpNode n = node(P + "qkv_rope", Opcode::QkvRope, l);
      // Heads split into parts of 8 rotary pairs, so that the QKV stage spreads over (nearly) every
      // SM rather than one SM per head; Qwen3's per-head q/k norm needs the whole head in one tile.
      const uint32_t parts = !c.qk_norm && D % 16 == 0 ? D / 16 : 1;
      n.proto.a.qkv = {off(in), fused, wid(g, L + "qkv"), wid(g, L + "qkv_bias"), wid(g, L + "q_norm"),
                       wid(g, L + "k_norm"), wid(g, "rope"), off(q), parts, T};
      n.proto.flags |= bf16_flags(in, q);
      n.units = (Hq + 2 * Hkv) * parts * blocks;
      n.token_blocks = blocks;
      set_token_blocks(n, n.units / blocks, n.units);
      if (M >= kPrefillTokens) {
        // Tiles of at most kPrefillQkvRows rows; narrower where they still make one wave of the
        // SMs (a short prompt's single token block: 96 tiles of 32 rows rather than 32 of 96, each
        // streaming fewer weight rows from HBM; Qwen2.5-1.5B's 4 blocks: 128 tiles of 64 rather
        // than 88 of 96), in whole divisors of a block so that no tile spans two blocks.
        const uint32_t widest = std::max<uint32_t>(1, kPrefillQkvRows / (D / parts)), per_block = n.units / blocks;
        n.tile_units = widest;
        for (uint32_t t = widest; t >= 1; --t)
          if (per_block % t == 0 && blocks * (per_block / t) <= o.num_sms) n.tile_units = t;
      }
      n.fixed_bytes = double(std::min(M, T ? T : M)) * H * act_bytes(in);
      n.bytes_per_unit = double(D) * H * wb / parts;
      n.reads = {in};
      n.writes = {q, kv[l]};
      g.add_node(std::move(n));
    }
    {
      OpNode n = node(P + "attn_partial", Opcode::AttnPartial, l);
      n.proto.a.attn = {off(q), S, off(part_o), off(part_lse), static_cast<uint32_t>(c.sliding_window), R, HB};
      n.proto.flags |= bf16_flags(q, part_o);
      const uint32_t row_blocks = attn_row_blocks(M, R);
      n.units = Hkv * HB * S * row_blocks;
      const double ctx = std::min<double>(o.ctx_hint, o.max_ctx);
      n.bytes_per_unit = 2.0 * (ctx / S) * D * wb + double(M) / row_blocks * (Hq / Hkv / HB) * D * act_bytes(q);
      // A unit is (kv head, head block, split, block of R rows), rows fastest: its token block is
      // its row block's; causal, it reads the keys and values of the blocks up to its own.
      if (R && T % R == 0) set_token_blocks(n, T / R, row_blocks);
      n.reads = {q, kv[l]};
      n.reads_causal = {kv[l]};
      n.writes = {part_o, part_lse};
      g.add_node(std::move(n));
    }
    if (S > 1) {
      OpNode n = node(P + "attn_reduce", Opcode::AttnReduce, l);
      n.proto.a.reduce = {off(part_o), off(part_lse), S, off(attn)};
      n.proto.flags |= bf16_flags(part_o, attn);
      n.units = Hq;
      n.bytes_per_unit = double(S) * M * (D + 1) * act_bytes(part_o);
      n.reads = {part_o, part_lse};
      n.writes = {attn};
      g.add_node(std::move(n));
    }
    residual(P + "o_proj", l, attn, Hq * D, wid(g, L + "o"), wid(g, L + "o_bias"), sharded ? tp_partial[2 * l] : -1, l);
    in = norm_input(P + "mlp_", L + "mlp_norm", l, x, fused);
    g.add_node(matvec(P + (c.gated_mlp ? "gate_up" : "fc"), Opcode::MatvecAct, l, in, fused, H, I, act,
                      wid(g, L + "up"), wid(g, L + "up_bias"), wid(g, L + "gate"), wid(g, L + "gate_bias")));
    residual(P + "down", l, act, I, wid(g, L + "down"), wid(g, L + "down_bias"), sharded ? tp_partial[2 * l + 1] : -1,
             l + 1 < c.num_layers ? l + 1 : -1);
  }
  InNorm fused{};
  const int in = norm_input("final_", "final_norm", -1, x, fused);
  {
    const uint32_t head = c.tie_word_embeddings && !sharded ? wid(g, "embed") : wid(g, "lm_head");
    OpNode n = matvec("lm_head", Opcode::LmHead, -1, in, fused, H, V, logits, head, kNone, kNone, kNone);
    n.proto.a.mv.in_row0 = M - m_out;
    n.proto.a.mv.rows = m_out;
    n.proto.a.mv.partial = off(lm_partial);
    n.proto.a.mv.token_block = 0;
    n.units = V;
    n.block_units = 0;  // its rows (m_out of them) are the prompt's last, not one per token block
    n.max_tiles = kMaxLmTiles;
    n.tile_units = 0;  // spread over the SMs: its tiles keep the CUDA-core path (their argmax follows warps)
    n.fixed_bytes = double(m_out) * H * act_bytes(in);
    n.reads = {in};
    n.writes = {logits, lm_partial};
    g.add_node(std::move(n));
  }
  {
    OpNode n = node("argmax", Opcode::Argmax, -1);
    n.proto.a.argmax = {off(lm_partial), 0 /* set by the scheduler */, m_out, g.tokens_out, kNone, 0};
    n.fixed_bytes = 0;
    n.reads = {lm_partial};
    n.writes = {tokens_out};
    if (sharded) {
      // This rank's best of its vocabulary slice; ArgmaxRanks picks among the ranks'.
      n.proto.a.argmax.best = off(tp_best) + tp.rank * m_out * 2;
      n.proto.a.argmax.index_offset = tp.vocab0;
      n.writes = {tp_best};
    }
    g.add_node(std::move(n));
  }
  if (sharded) {
    if (o.tp_launches) g.begin_launch({Exchange::Kind::Gather, off(tp_best), tp.size * m_out * 2});
    OpNode n = node("argmax_ranks", Opcode::ArgmaxRanks, -1);
    n.proto.a.argmax_ranks = {off(tp_best), m_out, g.tokens_out, tp.size};
    if (!o.tp_launches) n.proto.flags |= kFlagWaitAllRanks;
    n.reads = {tp_best};
    n.writes = {tokens_out};
    g.add_node(std::move(n));
  }
  g.logits = off(logits);
  g.finalize();
  if (!sharded && o.tagged_handoff) assign_handoff_tags(g, o.data_waits);
  return g;
}

}  // namespace mk
