// Tokenizer: validation of a TokenizerSpec and the encode/decode pipeline, in HF's order:
// added tokens -> normalizer -> normalized added tokens -> pre-tokenizer -> BPE -> BOS/EOS.
#include "tokenizer/tokenizer.h"

#include <fstream>

#include "model/error.h"
#include "model/gguf/gguf_file.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer_impl.h"

namespace mk {
namespace {

[[noreturn]] void fail(const TokenizerSpec& s, const std::string& what) {
  throw Error(s.source + ": " + what);
}

void check_id(const TokenizerSpec& s, int32_t id, const char* what) {
  if (id < -1 || id >= int32_t(s.vocab.size()))
    fail(s, std::string(what) + " " + std::to_string(id) + " is outside the vocabulary of " +
                std::to_string(s.vocab.size()));
}

void validate(const TokenizerSpec& s) {
  if (s.vocab.empty()) fail(s, "the vocabulary is empty");
  if (s.vocab.size() > (1u << 24)) fail(s, "the vocabulary has more than 2^24 entries");
  if (!s.token_types.empty() && s.token_types.size() != s.vocab.size())
    fail(s, std::to_string(s.token_types.size()) + " token types for " +
                std::to_string(s.vocab.size()) + " tokens");
  if (!s.scores.empty() && s.scores.size() != s.vocab.size())
    fail(s, std::to_string(s.scores.size()) + " scores for " + std::to_string(s.vocab.size()) +
                " tokens");
  check_id(s, s.unk_id, "unk id");
  check_id(s, s.bos_id, "bos id");
  for (int32_t e : s.eos_ids) check_id(s, e, "eos id");
  if (s.add_bos && s.bos_id < 0) fail(s, "BOS is to be added but there is no BOS token");
  if (s.add_eos && s.eos_ids.empty()) fail(s, "EOS is to be added but there is no EOS token");
  for (size_t i = 0; i < s.added_tokens.size(); ++i) {
    const AddedToken& t = s.added_tokens[i];
    if (t.id < 0 || t.id >= int32_t(s.vocab.size()))
      fail(s, "added token \"" + t.content + "\" has id " + std::to_string(t.id) +
                  " outside the vocabulary of " + std::to_string(s.vocab.size()));
    if (t.content.empty()) fail(s, "added token " + std::to_string(t.id) + " has no content");
  }
  bool byte_level = s.model == TokenizerModel::kByteLevelBpe;
  for (const PreTokenizerStep& p : s.pre_tokenizer) {
    if (p.kind == PreTokenizerStep::Kind::kByteLevel && !byte_level)
      fail(s, "a ByteLevel pre-tokenizer needs a byte-level model");
    if (p.kind == PreTokenizerStep::Kind::kMetaspace && p.replacement.empty())
      fail(s, "Metaspace has an empty replacement");
  }
}

std::unique_ptr<Tokenizer::Impl> compile(TokenizerSpec spec) {
  validate(spec);
  auto impl = std::make_unique<Tokenizer::Impl>();
  impl->spec = std::move(spec);
  const TokenizerSpec& s = impl->spec;
  size_t n = s.vocab.size();
  impl->pieces.reserve(n);
  for (size_t id = 0; id < n; ++id) {
    if (s.vocab[id].empty()) continue;
    auto [it, inserted] = impl->pieces.emplace(s.vocab[id], int32_t(id));
    // Unused/control duplicates occur in real GGUF vocabularies and are harmless; two normal
    // tokens with one spelling make BPE ambiguous.
    bool normal = s.token_types.empty() || s.token_types[id] == TokenType::kNormal;
    bool first_normal = s.token_types.empty() || s.token_types[it->second] == TokenType::kNormal;
    if (!inserted && normal && first_normal)
      fail(s, "duplicate token \"" + s.vocab[id] + "\" (ids " + std::to_string(it->second) +
                  " and " + std::to_string(id) + ")");
  }
  impl->special.assign(n, 0);
  impl->added_index.assign(n, -1);
  for (size_t i = 0; i < s.added_tokens.size(); ++i) {
    const AddedToken& t = s.added_tokens[i];
    if (impl->added_index[t.id] >= 0)
      fail(s, "two added tokens have id " + std::to_string(t.id));
    impl->added_index[t.id] = int32_t(i);
    impl->special[t.id] = t.special;
    impl->added_by_text.emplace(t.content, t.id);
    if (t.normalized && !s.normalizer.empty())
      impl->normalized_matcher.add(t, normalize(s.normalizer, t.content));
    else if (t.normalized)
      impl->normalized_matcher.add(t, t.content);
    else
      impl->raw_matcher.add(t, t.content);
  }
  impl->bpe = std::make_unique<BpeModel>(s, impl->pieces);
  return impl;
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::from_spec(TokenizerSpec spec) {
  return std::unique_ptr<Tokenizer>(new Tokenizer(compile(std::move(spec))));
}

std::unique_ptr<Tokenizer> Tokenizer::from_path(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    auto json = path / "tokenizer.json";
    if (!std::filesystem::exists(json, ec))
      throw Error(path.string() + ": the directory holds no tokenizer.json");
    return from_tokenizer_json(json);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open");
  char magic[4] = {};
  in.read(magic, 4);
  if (in.gcount() == 4 && std::string_view(magic, 4) == "GGUF")
    return from_gguf(*GgufFile::open(path));
  return from_tokenizer_json(path);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special) const {
  const Impl& m = *impl_;
  const TokenizerSpec& s = m.spec;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special && s.add_bos) ids.push_back(s.bos_id);

  std::vector<Segment> raw;
  if (m.raw_matcher.empty()) {
    if (!text.empty()) raw.push_back({text, -1});
  } else {
    m.raw_matcher.split(text, raw);
  }
  // Normalized text must outlive the segments that point into it.
  std::vector<std::string> owned;
  owned.reserve(raw.size());
  std::vector<Segment> segs;
  for (const Segment& r : raw) {
    if (r.token >= 0 || s.normalizer.empty()) {
      if (r.token >= 0 || m.normalized_matcher.empty()) segs.push_back(r);
      else m.normalized_matcher.split(r.text, segs);
      continue;
    }
    owned.push_back(normalize(s.normalizer, r.text));
    if (owned.back().empty()) continue;
    if (m.normalized_matcher.empty()) segs.push_back({owned.back(), -1});
    else m.normalized_matcher.split(owned.back(), segs);
  }

  std::vector<std::string> words;
  for (size_t i = 0; i < segs.size(); ++i) {
    if (segs[i].token >= 0) {
      ids.push_back(segs[i].token);
      continue;
    }
    words.clear();
    pretok::pre_tokenize(s.pre_tokenizer, segs[i].text, i == 0, words);
    for (const std::string& w : words) m.bpe->encode_word(w, ids);
  }
  if (add_special && s.add_eos) ids.push_back(s.eos_ids[0]);
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  const Impl& m = *impl_;
  std::vector<std::string> pieces;
  pieces.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size())
      throw Error(m.spec.source + ": cannot decode token id " + std::to_string(id) +
                  ": the vocabulary has " + std::to_string(vocab_size()) + " tokens");
    if (skip_special && m.special[id]) continue;
    const std::string& p = m.piece(id);
    if (!p.empty()) pieces.push_back(p);
  }
  if (m.spec.decoder.empty()) {
    // HF without a decoder joins the pieces with spaces.
    std::string out;
    for (size_t i = 0; i < pieces.size(); ++i) out += (i ? " " : "") + pieces[i];
    return out;
  }
  return run_decoder(m.spec.decoder, std::move(pieces));
}

std::string Tokenizer::token_text(int32_t id) const {
  return id >= 0 && id < vocab_size() ? impl_->piece(id) : std::string();
}

std::optional<int32_t> Tokenizer::token_id(std::string_view piece) const {
  if (auto it = impl_->added_by_text.find(piece); it != impl_->added_by_text.end())
    return it->second;
  if (auto it = impl_->pieces.find(piece); it != impl_->pieces.end()) return it->second;
  return std::nullopt;
}

int32_t Tokenizer::vocab_size() const { return int32_t(impl_->spec.vocab.size()); }
int32_t Tokenizer::bos_id() const { return impl_->spec.bos_id; }
std::vector<int32_t> Tokenizer::eos_ids() const { return impl_->spec.eos_ids; }
bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->special[id];
}
const TokenizerSpec& Tokenizer::spec() const { return impl_->spec; }

}  // namespace mk
