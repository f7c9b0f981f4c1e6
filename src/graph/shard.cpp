// Tensor parallelism, the graph side: how a model splits over N ranks (tp_split) and which slice of
// each weight rank r loads (shard_weights). docs/TENSOR_PARALLEL.md has the whole design.
#include <string>

#include "graph/graph.h"
#include "graph/shard.h"
#include "model/error.h"

namespace mk {

TpSplit tp_split(const ModelConfig& c, uint32_t size, uint32_t rank) {
  const uint32_t Hq = c.num_heads, Hkv = c.num_kv_heads, I = c.intermediate_size, V = c.vocab_size;
  if (size == 0) throw Error("--tp 0: tensor parallelism needs at least one rank");
  if (rank >= size) throw Error("tensor-parallel rank " + std::to_string(rank) + " of " + std::to_string(size));
  const std::string tp = "--tp " + std::to_string(size) + ": ";
  if (Hq % size) throw Error(tp + "the model's " + std::to_string(Hq) + " query heads do not split that many ways");
  if (I % size)
    throw Error(tp + "the model's intermediate size " + std::to_string(I) + " does not split that many ways");
  TpSplit s;
  s.size = size;
  s.rank = rank;
  s.heads = Hq / size;
  if (Hkv % size == 0) {
    s.kv_heads = Hkv / size;
    s.kv_head0 = rank * s.kv_heads;
  } else if (size % Hkv == 0) {
    // More ranks than KV heads: the ranks of one GQA group each keep (and fill) its KV head.
    s.kv_heads = 1;
    s.kv_head0 = rank / (size / Hkv);
  } else {
    throw Error(tp + "the model's " + std::to_string(Hkv) + " KV heads neither split that many ways nor divide it");
  }
  s.inter = I / size;
  s.vocab_stride = (V + size - 1) / size;
  s.vocab0 = rank * s.vocab_stride;
  if (s.vocab0 >= V) throw Error(tp + "more ranks than the vocabulary of " + std::to_string(V) + " can feed");
  s.vocab = std::min(V, s.vocab0 + s.vocab_stride) - s.vocab0;
  return s;
}

namespace {

// The name without its layer prefix ("3.qkv" -> "qkv").
std::string base_name(const std::string& name) {
  const size_t dot = name.find('.');
  return dot != std::string::npos && !name.empty() && name[0] >= '0' && name[0] <= '9' ? name.substr(dot + 1) : name;
}

void keep_rows(WeightDecl& d, std::vector<std::pair<int64_t, int64_t>> rows) {
  d.full_shape = d.shape;
  d.rows = std::move(rows);
  int64_t n = 0;
  for (const auto& [a, b] : d.rows) n += b - a;
  d.shape[0] = n;
  if (d.shape.size() == 2) d.col_begin = 0, d.col_end = d.shape[1];
}

void keep_cols(WeightDecl& d, int64_t c0, int64_t c1) {
  d.full_shape = d.shape;
  d.rows = {{0, d.shape[0]}};
  d.col_begin = c0;
  d.col_end = c1;
  d.shape[1] = c1 - c0;
}

}  // namespace

void shard_weights(OpGraph& g, const TpSplit& s) {
  if (s.size == 1) return;
  const ModelConfig& c = g.config;
  const int64_t D = c.head_dim, Hq = c.num_heads, Hkv = c.num_kv_heads;
  const int64_t q0 = int64_t(s.rank) * s.heads * D, q1 = q0 + int64_t(s.heads) * D;
  const int64_t kv0 = int64_t(s.kv_head0) * D, kv1 = kv0 + int64_t(s.kv_heads) * D;
  const int64_t i0 = int64_t(s.rank) * s.inter, i1 = i0 + s.inter;
  std::vector<WeightDecl> out;
  for (WeightDecl d : g.weights) {
    const std::string b = base_name(d.name);
    if (b == "qkv" || b == "qkv_bias") {
      keep_rows(d, {{q0, q1}, {Hq * D + kv0, Hq * D + kv1}, {(Hq + Hkv) * D + kv0, (Hq + Hkv) * D + kv1}});
    } else if (b == "o") {
      keep_cols(d, q0, q1);
    } else if (b == "up" || b == "gate" || b == "up_bias" || b == "gate_bias") {
      keep_rows(d, {{i0, i1}});
    } else if (b == "down") {
      keep_cols(d, i0, i1);
    } else if (b == "o_bias" || b == "down_bias") {
      if (s.rank != 0) continue;  // a row-parallel bias is added once, by rank 0
    } else if (b == "lm_head") {
      keep_rows(d, {{s.vocab0, s.vocab0 + s.vocab}});
    }
    out.push_back(std::move(d));
  }
  if (c.tie_word_embeddings) {
    // The embedding stays whole (any rank may look up any token); the LM head takes its rows.
    for (const WeightDecl& d : out)
      if (d.name == "embed") {
        WeightDecl head = d;
        head.name = "lm_head";
        keep_rows(head, {{s.vocab0, s.vocab0 + s.vocab}});
        out.push_back(std::move(head));
        break;
      }
  }
  g.weights = std::move(out);
}

}  // namespace mk
