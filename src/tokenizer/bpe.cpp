// BPE merging with a min-heap of candidate pairs ordered by (rank, position), so the result is
// the same as repeatedly merging the best-ranked, leftmost pair, in O(n log n) per word.
#include "tokenizer/bpe.h"

#include <algorithm>
#include <cstdio>
#include <queue>

#include "model/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/unicode.h"

namespace mk {
namespace {

constexpr size_t kMaxCachedWordBytes = 64;
constexpr size_t kMaxCacheEntries = 1 << 16;

size_t char_count(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); i += unicode::decode_utf8(s, i).len) ++n;
  return n;
}

}  // namespace

BpeModel::BpeModel(const TokenizerSpec& spec, const PieceMap& pieces)
    : pieces_(pieces),
      byte_level_(spec.model == TokenizerModel::kByteLevelBpe),
      byte_fallback_(spec.byte_fallback),
      fuse_unk_(spec.fuse_unk),
      ignore_merges_(spec.ignore_merges),
      unk_id_(spec.unk_id) {
  for (int b = 0; b < 256; ++b) {
    std::string piece;
    if (byte_level_) {
      piece = byte_level::byte_to_piece(uint8_t(b));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<0x%02X>", b);
      piece = buf;
    }
    auto it = pieces_.find(piece);
    byte_ids_[b] = it == pieces_.end() ? -1 : it->second;
  }
  if (!spec.merges.empty())
    add_ranked_merges(spec);
  else if (!spec.scores.empty())
    add_score_merges(spec);
}

void BpeModel::add_ranked_merges(const TokenizerSpec& spec) {
  merges_.reserve(spec.merges.size());
  for (size_t rank = 0; rank < spec.merges.size(); ++rank) {
    const auto& [left, right] = spec.merges[rank];
    auto l = pieces_.find(left), r = pieces_.find(right);
    auto m = pieces_.find(left + right);
    const char* missing = l == pieces_.end() ? "left piece" : r == pieces_.end() ? "right piece"
                          : m == pieces_.end() ? "merged piece" : nullptr;
    if (missing)
      throw Error(spec.source + ": merges[" + std::to_string(rank) + "] (\"" + left + " " + right +
                  "\"): " + missing + " is not in the vocabulary");
    // A repeated pair takes its last rank, as HF does.
    merges_[key(l->second, r->second)] = {int32_t(rank), m->second};
  }
}

// SentencePiece vocabularies come with scores instead of merges: every split of a piece into two
// pieces is a merge, ordered by the piece's score, then longer left part, then longer right part,
// then piece id, which is the order HF derives when it converts such a vocabulary.
void BpeModel::add_score_merges(const TokenizerSpec& spec) {
  struct Candidate {
    float score;
    uint32_t left_len, right_len;
    int32_t id, left, right;
  };
  std::vector<Candidate> cands;
  for (size_t id = 0; id < spec.vocab.size(); ++id) {
    if (!spec.token_types.empty() && spec.token_types[id] != TokenType::kNormal) continue;
    std::string_view piece = spec.vocab[id];
    size_t total = char_count(piece);
    size_t left_chars = 0;
    for (size_t i = 0; i < piece.size();) {
      i += unicode::decode_utf8(piece, i).len;
      ++left_chars;
      if (i >= piece.size()) break;
      auto l = pieces_.find(piece.substr(0, i)), r = pieces_.find(piece.substr(i));
      if (l == pieces_.end() || r == pieces_.end()) continue;
      cands.push_back({spec.scores[id], uint32_t(left_chars), uint32_t(total - left_chars),
                       int32_t(id), l->second, r->second});
    }
  }
  std::stable_sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.left_len != b.left_len) return a.left_len > b.left_len;
    return a.right_len > b.right_len;
  });
  merges_.reserve(cands.size());
  for (size_t rank = 0; rank < cands.size(); ++rank)
    merges_.try_emplace(key(cands[rank].left, cands[rank].right), Merge{int32_t(rank), cands[rank].id});
}

void BpeModel::initial_symbols(std::string_view word, std::vector<int32_t>& ids) const {
  if (byte_level_) {
    for (unsigned char b : word)
      if (byte_ids_[b] >= 0) ids.push_back(byte_ids_[b]);
      else if (unk_id_ >= 0) ids.push_back(unk_id_);
    return;
  }
  bool last_was_unk = false;
  for (size_t i = 0; i < word.size();) {
    unicode::Decoded d = unicode::decode_utf8(word, i);
    std::string_view ch = word.substr(i, d.len);
    i += d.len;
    if (d.cp != unicode::kInvalid) {
      auto it = pieces_.find(ch);
      if (it != pieces_.end()) {
        ids.push_back(it->second);
        last_was_unk = false;
        continue;
      }
    }
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char b : ch) all = all && byte_ids_[b] >= 0;
      if (all) {
        for (unsigned char b : ch) ids.push_back(byte_ids_[b]);
        last_was_unk = false;
        continue;
      }
    }
    if (unk_id_ < 0) continue;
    if (!(fuse_unk_ && last_was_unk)) ids.push_back(unk_id_);
    last_was_unk = true;
  }
}

void BpeModel::apply_merges(std::vector<int32_t>& ids) const {
  const size_t n = ids.size();
  if (n < 2 || merges_.empty()) return;
  std::vector<int32_t> prev(n), next(n);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = int32_t(i) - 1;
    next[i] = i + 1 < n ? int32_t(i + 1) : -1;
  }
  struct Cand {
    int32_t rank, pos, left_id, right_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto consider = [&](int32_t pos) {
    if (pos < 0 || next[pos] < 0) return;
    auto it = merges_.find(key(ids[pos], ids[next[pos]]));
    if (it != merges_.end()) heap.push({it->second.rank, pos, ids[pos], ids[next[pos]]});
  };
  for (size_t i = 0; i + 1 < n; ++i) consider(int32_t(i));
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    int32_t r = next[c.pos];
    // Stale: one side has merged since (ids only ever grow into longer pieces).
    if (ids[c.pos] != c.left_id || r < 0 || ids[r] != c.right_id) continue;
    ids[c.pos] = merges_.find(key(c.left_id, c.right_id))->second.result;
    ids[r] = -1;
    next[c.pos] = next[r];
    if (next[r] >= 0) prev[next[r]] = c.pos;
    consider(prev[c.pos]);
    consider(c.pos);
  }
  size_t w = 0;
  for (size_t i = 0; i < n; ++i)
    if (ids[i] >= 0) ids[w++] = ids[i];
  ids.resize(w);
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  bool whole = false;
  if (ignore_merges_) {
    std::string spelled;
    if (byte_level_)
      for (unsigned char b : word) spelled += byte_level::byte_to_piece(b);
    auto it = pieces_.find(byte_level_ ? std::string_view(spelled) : word);
    if (it != pieces_.end()) {
      ids.push_back(it->second);
      whole = true;
    }
  }
  if (!whole) {
    ids.reserve(word.size());
    initial_symbols(word, ids);
    apply_merges(ids);
  }
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(std::string(word), std::move(ids));
  }
}

}  // namespace mk
