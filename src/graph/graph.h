// The op graph: a model's forward pass for M tokens as a DAG of ops with shapes, the weights it
// reads (declared, not loaded) and the activation buffers it uses. Built from a config alone.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mk/isa.h"
#include "model/config.h"

namespace mk {

// How one engine weight is assembled from a model file's (Hugging Face named) tensors.
struct WeightDecl {
  enum class Kind { Loaded, RopeTable };
  std::string name;               // engine name, e.g. "3.qkv"
  std::vector<int64_t> shape;     // engine shape: matrices are [out, in]
  Kind kind = Kind::Loaded;
  std::vector<std::string> parts; // source tensors concatenated along dim 0
  bool transpose = false;         // source stored [in, out] (GPT-2's Conv1D)
  // A tensor-parallel rank's slice (shard_graph): the assembled [out, in] (or [n]) tensor is
  // full_shape, and the rank keeps the rows of `rows` (ranges, in order) and the columns
  // [col_begin, col_end). Empty full_shape: the whole tensor.
  std::vector<int64_t> full_shape;
  std::vector<std::pair<int64_t, int64_t>> rows;
  int64_t col_begin = 0, col_end = 0;
  int64_t numel() const;
};

// An activation buffer in the arena (floats), or a named state that lives elsewhere (the KV
// cache of a layer, the token slots): those take part in dependency analysis only.
struct Buffer {
  std::string name;
  uint64_t floats = 0;   // arena size; 0 for external state
  uint32_t offset = 0;   // arena offset, assigned by OpGraph::finalize
};

struct OpNode {
  std::string name;          // e.g. "L3.qkv_rope"
  Instruction proto{};       // opcode, layer and operands; the scheduler fills tile and sync fields
  uint32_t units = 1;        // the op splits into tiles of whole units (rows, heads, ...)
  uint32_t unit_align = 1;   // tile sizes are multiples of this (but the last)
  uint32_t max_tiles = 0xFFFFFFFFu;
  uint32_t tile_units = 0;   // tiles of exactly this many units (the last one shorter); 0: spread over the SMs
  uint32_t tail_units = 0;   // a short last wave's tiles may split into pieces of at least this many units
                             // (the scheduler's tile_ranges); 0: they never do
  uint32_t token_blocks = 1; // the units are this many equal blocks of tokens (TokenSegments): tiles go out
                             // in the order of their units within a block, then by block
  // Token blocks (prefill): unit u lies in token block block_of_unit(u) = u % block_period /
  // block_units (block_units 0: no such structure). A tile inside one block touches only that block's
  // rows of its buffers, but those in reads_causal, of which it reads blocks 0..b (attention's keys
  // and values): the scheduler then lets it wait for its producers' blocks alone (derive_block_deps).
  uint32_t block_units = 0, block_period = 0;
  std::vector<int> reads_causal;
  uint32_t block_of_unit(uint32_t u) const;
  double fixed_bytes = 0;    // bytes every tile reads regardless of its size (its input vector)
  double bytes_per_unit = 0; // bytes read per unit (weights, KV)
  std::vector<int> reads, writes;  // buffer ids
  std::vector<int> deps;           // node ids this one must wait for (filled by finalize)
  // Waits by data (kFlagWaitByData in isa.h): the dependency, one of `deps`, whose tagged output is
  // this node's whole input row, so that the GPU may await the row's tags instead of its counter
  // (assign_handoff_tags); -1: none. The scheduler then also waits for that node's own deps.
  int wait_by_data = -1;
  uint32_t launch = 0;  // which of the step's launches runs it (OpGraph::launches; set by add_node)
};

// Tensor parallelism between launches (GraphOptions::tp_launches): what the ranks exchange after a
// launch and before the next. Sum: every rank's [offset, offset + floats) becomes the sum over the
// ranks (an all-reduce). Gather: rank r's slice r of `floats / ranks` becomes every rank's (an
// all-gather in place).
struct Exchange {
  enum class Kind : uint8_t { Sum, Gather };
  Kind kind = Kind::Sum;
  uint32_t offset = 0;  // arena floats, the same on every rank
  uint32_t floats = 0;
};

struct OpGraph {
  ModelConfig config;
  ModelDims dims{};
  std::vector<WeightDecl> weights;
  std::vector<Buffer> buffers;
  std::vector<OpNode> nodes;      // in a valid topological order
  uint64_t arena_floats = 0;
  uint32_t io_slots = 0;          // int32 slots: token inputs, then token outputs
  uint32_t tokens_in = 0, tokens_out = 0;  // io slot offsets
  uint32_t logits = 0;            // arena offset of [M_out, vocab] logits
  uint32_t logits_rows = 0;       // M_out
  uint32_t logits_cols = 0;       // vocab, or this rank's slice of it
  // A step is one launch, or (GraphOptions::tp_launches) several, with exchanges[k] between launch
  // k and k + 1. Nodes added after begin_launch run in the new launch.
  uint32_t launches = 1;
  std::vector<Exchange> exchanges;
  void begin_launch(Exchange before) {
    exchanges.push_back(before);
    ++launches;
  }

  int add_weight(WeightDecl decl);              // returns its id
  int weight_id(const std::string& name) const; // kNone-like -1 when absent
  int add_buffer(std::string name, uint64_t floats);
  int add_node(OpNode node);
  const Buffer& buffer(int id) const { return buffers[id]; }

  // Assigns arena offsets and derives each node's dependencies from the buffers it reads and
  // writes (read-after-write, write-after-read, write-after-write), transitively reduced.
  void finalize();
};

// What one part of a node (one token block, or the whole node) waits for: a token block of a
// producer, or all of its tiles (block kAllBlocks).
constexpr uint32_t kAllBlocks = 0xFFFFFFFFu;
struct BlockDep {
  int node;
  uint32_t block;
};
// For each node, the dependencies of each of its parts: deps[node][block], one part for a whole node.
using BlockDeps = std::vector<std::vector<std::vector<BlockDep>>>;

// Dependencies by token block (graph/dependencies.cpp): blocks[i] is how many token blocks node i
// waits and signals by (0: as a whole). The buffers' read/write analysis on (buffer, block) regions
// and (node, block) parts, transitively reduced; with every blocks[i] 0, the nodes' (finalize's).
BlockDeps derive_block_deps(const OpGraph& graph, const std::vector<uint32_t>& blocks);

struct GraphOptions {
  uint32_t n_tokens = 1;      // M
  uint32_t max_ctx = 2048;    // KV cache capacity
  bool all_logits = false;    // logits for every row, not only the last
  bool fuse_norms = true;     // fold each norm into the matvec tiles that consume it
  // A short prompt's residual projections split by ranges of their input where a Norm instruction
  // follows (MatvecArgs::k_splits).
  bool split_k = true;
  // Prefill programs (M >= 16 tokens) keep the activations between ops (the normalized input,
  // attention's output, the MLP's) in bf16, with the block norms as their own Norm instructions;
  // the residual stream stays fp32. The GPU's tensor cores take bf16 operands, so its prefill
  // tiles then copy them straight into shared memory (kFlagBf16In / kFlagBf16Out in isa.h).
  bool bf16_activations = false;
  uint32_t weight_bytes = 2;  // bytes per weight element assumed by the cost model (bf16)
  uint32_t kv_splits = 0;     // attention KV splits; 0 chooses from the context and the SM count
  uint32_t kv_span = 0;       // the context (position + n_tokens) the program runs at; 0: max_ctx
  // Decode's attention units: each takes 1/attn_head_blocks of a GQA group's query heads (1: the
  // whole group; else it must divide the group; 0: by the model, decoder.cpp's kDecodeMinAttnUnits).
  // Prefill programs ignore it.
  uint32_t attn_head_blocks = 0;
  uint32_t num_sms = 132;     // only used to choose defaults
  uint32_t ctx_hint = 1024;   // context length assumed by the cost model for attention
  uint32_t tp_size = 1;       // tensor parallelism: this graph is rank tp_rank's of tp_size
  uint32_t tp_rank = 0;
  // ... whose ranks meet between launches rather than inside one (the NCCL-style path, to compare):
  // each AllReduce and ArgmaxRanks starts a launch, its input exchanged before it (OpGraph::exchanges),
  // and reads only its own rank's arena.
  bool tp_launches = false;
  // Decode on one GPU: matvecs hand their outputs to the next stage without a fence (kFlagNoFence
  // in isa.h, assign_handoff_tags); off only to compare the two.
  bool tagged_handoff = true;
  // ... and the stages that read a tagged row whole wait for it by its tags rather than by its
  // writer's counter (OpNode::wait_by_data); off only to compare the two.
  bool data_waits = true;
};

// How heads, the MLP and the vocabulary split across tensor-parallel ranks (docs/TENSOR_PARALLEL.md).
// Throws a one-line error when the model does not split N ways.
struct TpSplit {
  uint32_t size = 1, rank = 0;
  uint32_t heads = 0, kv_heads = 0, kv_head0 = 0;  // this rank's query heads, KV heads, first KV head
  uint32_t inter = 0;                              // this rank's rows of gate/up (columns of down)
  uint32_t vocab = 0, vocab0 = 0;                  // this rank's LM-head rows and the first one
  uint32_t vocab_stride = 0;                       // every rank's row count but the last's (ceil(V / N))
};
TpSplit tp_split(const ModelConfig& config, uint32_t size, uint32_t rank);

// Decode attention over at most this many keys runs as one split per KV head: reading them costs
// about one round of loads across an SM's warps, less than the AttnReduce stage (a dependent hop
// and a merge) that several splits need. With the reduce in one round trip, 8 or 16 splits beat one
// from bench's context 64 (positions 68-195) on: 1.129 / 1.133 against 1.189 ms (H100, session 26).
constexpr uint32_t kSingleSplitKeys = 64;

// Decode at spans of this many positions or more takes fewer attention head blocks where a layer
// has few KV heads (decode_head_blocks in decoder.cpp): a unit's keys then cost more than the
// latency that more units hide.
constexpr uint32_t kLongSpanKeys = 2048;
// The context a program runs at: its kv_span, else its capacity.
inline uint32_t program_span(const GraphOptions& o) { return o.kv_span ? o.kv_span : o.max_ctx; }
inline bool long_span(const GraphOptions& o) { return program_span(o) >= kLongSpanKeys; }

// The KV splits of AttnPartial for these options: the explicit kv_splits, else one split for
// prefill programs (they split by rows) and for spans up to kSingleSplitKeys (no AttnReduce stage),
// else enough splits to give every SM a (kv head, split) unit; either way no more than keep the
// partial outputs to 8M floats.
uint32_t choose_kv_splits(const ModelConfig& config, const GraphOptions& options);

// Decode programs on one GPU: tags the activation buffers that only Embed, the matvecs and attention's
// output stage write and only QkvRope and the matvecs read, and lets their writers signal without a fence
// (graph/handoff_tags.cpp). With `data_waits`, also sets OpNode::wait_by_data where it is safe.
// Call after finalize; a prefill graph is left as it is.
void assign_handoff_tags(OpGraph& graph, bool data_waits);

// Builds the graph of any supported architecture (a pre-norm decoder: attention, then MLP).
OpGraph build_graph(const ModelConfig& config, const GraphOptions& options);

// Per-architecture weight declarations (graph/archs/): engine names -> file tensors.
void declare_llama_weights(const ModelConfig& config, OpGraph& graph);  // also Mistral, Qwen2/3
void declare_gpt2_weights(const ModelConfig& config, OpGraph& graph);

}  // namespace mk
