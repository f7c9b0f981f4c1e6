// HF tokenizer.json -> TokenizerSpec. Only the components the supported families use are
// accepted; anything else is an mk::Error naming the file and the JSON path at fault.
#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/error.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace mk {
namespace {

using json = nlohmann::json;

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& where, const std::string& what) const {
    throw Error(source_ + ": " + where + ": " + what);
  }
  const json& field(const json& obj, const std::string& where, const char* key) const {
    if (!obj.is_object()) fail(where, "expected an object");
    auto it = obj.find(key);
    if (it == obj.end()) fail(where, std::string("missing \"") + key + "\"");
    return *it;
  }
  std::string str(const json& obj, const std::string& where, const char* key) const {
    const json& v = field(obj, where, key);
    if (!v.is_string()) fail(where + "." + key, "expected a string");
    return v.get<std::string>();
  }
  bool flag(const json& obj, const std::string& where, const char* key, bool def) const {
    if (!obj.is_object() || !obj.contains(key) || obj.at(key).is_null()) return def;
    const json& v = obj.at(key);
    if (!v.is_boolean()) fail(where + "." + key, "expected true or false");
    return v.get<bool>();
  }
  int64_t integer(const json& v, const std::string& where) const {
    if (!v.is_number_integer()) fail(where, "expected an integer");
    return v.get<int64_t>();
  }
  const json& array(const json& obj, const std::string& where, const char* key) const {
    const json& v = field(obj, where, key);
    if (!v.is_array()) fail(where + "." + key, "expected an array");
    return v;
  }
  // HF patterns are {"String": s} or {"Regex": r}; `regex` says which it was.
  std::string pattern(const json& obj, const std::string& where, bool* regex) const {
    const json& p = field(obj, where, "pattern");
    if (p.is_object() && p.contains("String") && p["String"].is_string()) {
      *regex = false;
      return p["String"].get<std::string>();
    }
    if (p.is_object() && p.contains("Regex") && p["Regex"].is_string()) {
      *regex = true;
      return p["Regex"].get<std::string>();
    }
    fail(where + ".pattern", "expected {\"String\": ...} or {\"Regex\": ...}");
  }
  const std::string& source() const { return source_; }

 private:
  std::string source_;
};

std::string type_of(const Reader& r, const json& obj, const std::string& where) {
  return r.str(obj, where, "type");
}

void read_normalizer(const Reader& r, const json& n, const std::string& where,
                     std::vector<NormalizerStep>& out) {
  if (n.is_null()) return;
  std::string type = type_of(r, n, where);
  if (type == "Sequence") {
    const json& list = r.array(n, where, "normalizers");
    for (size_t i = 0; i < list.size(); ++i)
      read_normalizer(r, list[i], where + ".normalizers[" + std::to_string(i) + "]", out);
  } else if (type == "NFC") {
    out.push_back({NormalizerStep::Kind::kNfc, "", ""});
  } else if (type == "Prepend") {
    out.push_back({NormalizerStep::Kind::kPrepend, r.str(n, where, "prepend"), ""});
  } else if (type == "Replace") {
    bool regex = false;
    std::string pat = r.pattern(n, where, &regex);
    if (regex) r.fail(where, "Replace with a regex pattern is not supported");
    out.push_back({NormalizerStep::Kind::kReplace, pat, r.str(n, where, "content")});
  } else {
    r.fail(where, "normalizer \"" + type + "\" is not supported (NFC, Prepend, Replace are)");
  }
}

PreTokenizerStep::Prepend prepend_scheme(const Reader& r, const json& p, const std::string& where) {
  if (p.contains("prepend_scheme") && !p["prepend_scheme"].is_null()) {
    std::string s = r.str(p, where, "prepend_scheme");
    if (s == "always") return PreTokenizerStep::Prepend::kAlways;
    if (s == "first") return PreTokenizerStep::Prepend::kFirst;
    if (s == "never") return PreTokenizerStep::Prepend::kNever;
    r.fail(where + ".prepend_scheme", "unknown scheme \"" + s + "\"");
  }
  return r.flag(p, where, "add_prefix_space", true) ? PreTokenizerStep::Prepend::kAlways
                                                    : PreTokenizerStep::Prepend::kNever;
}

void read_pre_tokenizer(const Reader& r, const json& p, const std::string& where,
                        std::vector<PreTokenizerStep>& out) {
  if (p.is_null()) return;
  std::string type = type_of(r, p, where);
  using K = PreTokenizerStep::Kind;
  PreTokenizerStep step{};
  if (type == "Sequence") {
    const json& list = r.array(p, where, "pretokenizers");
    for (size_t i = 0; i < list.size(); ++i)
      read_pre_tokenizer(r, list[i], where + ".pretokenizers[" + std::to_string(i) + "]", out);
    return;
  } else if (type == "ByteLevel") {
    step.kind = K::kByteLevel;
    step.add_prefix_space = r.flag(p, where, "add_prefix_space", false);
    step.use_regex = r.flag(p, where, "use_regex", true);
  } else if (type == "Split") {
    step.kind = K::kSplit;
    bool regex = false;
    std::string pat = r.pattern(p, where, &regex);
    if (!regex || !pretok::pattern_from_regex(pat, &step.pattern))
      r.fail(where + ".pattern", "unrecognised split pattern \"" + pat +
                                     "\" (the GPT-2, Llama 3 and Qwen2 regexes are supported)");
    std::string behavior = r.str(p, where, "behavior");
    if (behavior != "Isolated") r.fail(where + ".behavior", "only \"Isolated\" is supported");
    if (r.flag(p, where, "invert", false)) r.fail(where + ".invert", "inverted splits are not supported");
  } else if (type == "Digits") {
    step.kind = K::kDigits;
    step.individual_digits = r.flag(p, where, "individual_digits", false);
  } else if (type == "Metaspace") {
    step.kind = K::kMetaspace;
    step.replacement = r.str(p, where, "replacement");
    step.prepend = prepend_scheme(r, p, where);
    step.split = r.flag(p, where, "split", true);
  } else {
    r.fail(where, "pre-tokenizer \"" + type +
                      "\" is not supported (ByteLevel, Split, Digits, Metaspace, Sequence are)");
  }
  out.push_back(step);
}

void read_decoder(const Reader& r, const json& d, const std::string& where,
                  std::vector<DecoderStep>& out) {
  if (d.is_null()) return;
  std::string type = type_of(r, d, where);
  using K = DecoderStep::Kind;
  DecoderStep step{};
  if (type == "Sequence") {
    const json& list = r.array(d, where, "decoders");
    for (size_t i = 0; i < list.size(); ++i)
      read_decoder(r, list[i], where + ".decoders[" + std::to_string(i) + "]", out);
    return;
  } else if (type == "ByteLevel") {
    step.kind = K::kByteLevel;
  } else if (type == "Replace") {
    step.kind = K::kReplace;
    bool regex = false;
    step.text = r.pattern(d, where, &regex);
    if (regex) r.fail(where, "Replace with a regex pattern is not supported");
    step.replacement = r.str(d, where, "content");
  } else if (type == "ByteFallback") {
    step.kind = K::kByteFallback;
  } else if (type == "Fuse") {
    step.kind = K::kFuse;
  } else if (type == "Strip") {
    step.kind = K::kStrip;
    step.text = r.str(d, where, "content");
    int64_t start = r.integer(r.field(d, where, "start"), where + ".start");
    int64_t stop = r.integer(r.field(d, where, "stop"), where + ".stop");
    if (start < 0 || stop < 0 || start > 1000 || stop > 1000) r.fail(where, "bad strip counts");
    step.start = int32_t(start), step.stop = int32_t(stop);
  } else if (type == "Metaspace") {
    step.kind = K::kMetaspace;
    step.text = r.str(d, where, "replacement");
    step.start = prepend_scheme(r, d, where) != PreTokenizerStep::Prepend::kNever;
  } else {
    r.fail(where, "decoder \"" + type + "\" is not supported");
  }
  out.push_back(step);
}

// Reads a TemplateProcessing "single" template: one special token before $A is BOS, one after is
// EOS; longer templates are refused rather than half-applied.
void read_template(const Reader& r, const json& p, const std::string& where, TokenizerSpec& spec) {
  const json& single = r.array(p, where, "single");
  const json& specials = r.field(p, where, "special_tokens");
  std::vector<int32_t> before, after;
  bool seen_a = false;
  for (size_t i = 0; i < single.size(); ++i) {
    std::string at = where + ".single[" + std::to_string(i) + "]";
    const json& item = single[i];
    if (item.is_object() && item.contains("Sequence")) {
      if (seen_a) r.fail(at, "two sequences in a single-sequence template");
      seen_a = true;
      continue;
    }
    if (!item.is_object() || !item.contains("SpecialToken")) r.fail(at, "unknown template piece");
    std::string name = r.str(item["SpecialToken"], at + ".SpecialToken", "id");
    if (!specials.is_object() || !specials.contains(name))
      r.fail(where + ".special_tokens", "no entry for \"" + name + "\"");
    const json& ids = r.array(specials[name], where + ".special_tokens." + name, "ids");
    for (const json& id : ids) {
      int64_t v = r.integer(id, where + ".special_tokens." + name + ".ids");
      if (v < 0 || v >= int64_t(spec.vocab.size()))
        r.fail(where + ".special_tokens." + name, "id " + std::to_string(v) + " is out of range");
      (seen_a ? after : before).push_back(int32_t(v));
    }
  }
  if (before.size() > 1 || after.size() > 1)
    r.fail(where, "templates adding more than one token on a side are not supported");
  if (!before.empty()) spec.add_bos = true, spec.bos_id = before[0];
  if (!after.empty()) {
    spec.add_eos = true;
    spec.eos_ids.insert(spec.eos_ids.begin(), after[0]);
  }
}

void read_post_processor(const Reader& r, const json& p, const std::string& where,
                         TokenizerSpec& spec) {
  if (p.is_null()) return;
  std::string type = type_of(r, p, where);
  if (type == "Sequence") {
    const json& list = r.array(p, where, "processors");
    for (size_t i = 0; i < list.size(); ++i)
      read_post_processor(r, list[i], where + ".processors[" + std::to_string(i) + "]", spec);
  } else if (type == "TemplateProcessing") {
    read_template(r, p, where, spec);
  } else if (type != "ByteLevel") {  // ByteLevel only adjusts offsets
    r.fail(where, "post-processor \"" + type + "\" is not supported");
  }
}

void read_model(const Reader& r, const json& m, TokenizerSpec& spec, int64_t max_added_id) {
  const std::string where = "model";
  if (m.contains("type") && r.str(m, where, "type") != "BPE")
    r.fail(where + ".type", "model \"" + m["type"].get<std::string>() + "\" is not supported (BPE is)");
  const json& vocab = r.field(m, where, "vocab");
  if (!vocab.is_object()) r.fail("model.vocab", "expected an object of piece: id");
  int64_t max_id = max_added_id;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    int64_t id = r.integer(it.value(), "model.vocab[\"" + it.key() + "\"]");
    if (id < 0 || id >= int64_t(vocab.size()) + (1 << 20))
      r.fail("model.vocab[\"" + it.key() + "\"]", "id " + std::to_string(id) + " is out of range");
    max_id = std::max(max_id, id);
  }
  spec.vocab.assign(size_t(max_id + 1), std::string());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    int64_t id = it.value().get<int64_t>();
    if (it.key().empty()) r.fail("model.vocab", "empty piece");
    if (!spec.vocab[id].empty())
      r.fail("model.vocab", "id " + std::to_string(id) + " is used by both \"" + spec.vocab[id] +
                                "\" and \"" + it.key() + "\"");
    spec.vocab[id] = it.key();
  }
  if (m.contains("merges") && !m["merges"].is_null()) {
    const json& merges = r.array(m, where, "merges");
    spec.merges.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
      const json& e = merges[i];
      std::string at = "model.merges[" + std::to_string(i) + "]";
      if (e.is_string()) {
        const std::string& s = e.get_ref<const std::string&>();
        size_t sp = s.find(' ');
        if (sp == std::string::npos || sp == 0 || sp + 1 >= s.size() ||
            s.find(' ', sp + 1) != std::string::npos)
          r.fail(at, "expected \"left right\", got \"" + s + "\"");
        spec.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        spec.merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
      } else {
        r.fail(at, "expected \"left right\" or [left, right]");
      }
    }
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (m.contains(key) && !m[key].is_null() && !(m[key].is_string() && m[key].get<std::string>().empty()))
      r.fail(std::string("model.") + key, "is not supported");
  if (m.contains("dropout") && !m["dropout"].is_null() &&
      !(m["dropout"].is_number() && m["dropout"].get<double>() == 0.0))
    r.fail("model.dropout", "BPE dropout is not supported");
  spec.byte_fallback = r.flag(m, where, "byte_fallback", false);
  spec.fuse_unk = r.flag(m, where, "fuse_unk", false);
  spec.ignore_merges = r.flag(m, where, "ignore_merges", false);
  if (m.contains("unk_token") && !m["unk_token"].is_null()) {
    std::string unk = r.str(m, where, "unk_token");
    for (size_t id = 0; id < spec.vocab.size() && spec.unk_id < 0; ++id)
      if (spec.vocab[id] == unk) spec.unk_id = int32_t(id);
    if (spec.unk_id < 0) r.fail("model.unk_token", "\"" + unk + "\" is not in the vocabulary");
  }
}


TokenizerSpec spec_from_json(std::string_view text, const std::string& source) {
  Reader r(source);
  json doc;
  try {
    doc = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    throw Error(source + ": not valid JSON: " + e.what());
  }
  if (!doc.is_object()) r.fail("top level", "expected an object");
  TokenizerSpec spec;
  spec.source = source;
  try {
    // Added tokens may lie past the model's vocabulary; they size it too.
    std::vector<AddedToken> added;
    int64_t max_added = -1;
    if (doc.contains("added_tokens") && !doc["added_tokens"].is_null()) {
      const json& list = r.array(doc, "top level", "added_tokens");
      for (size_t i = 0; i < list.size(); ++i) {
        std::string at = "added_tokens[" + std::to_string(i) + "]";
        const json& t = list[i];
        AddedToken a;
        int64_t id = r.integer(r.field(t, at, "id"), at + ".id");
        if (id < 0 || id >= (1 << 24)) r.fail(at + ".id", std::to_string(id) + " is out of range");
        a.id = int32_t(id);
        a.content = r.str(t, at, "content");
        if (a.content.empty()) r.fail(at + ".content", "is empty");
        a.special = r.flag(t, at, "special", false);
        a.lstrip = r.flag(t, at, "lstrip", false);
        a.rstrip = r.flag(t, at, "rstrip", false);
        a.single_word = r.flag(t, at, "single_word", false);
        a.normalized = r.flag(t, at, "normalized", !a.special);
        max_added = std::max(max_added, id);
        added.push_back(std::move(a));
      }
    }
    read_model(r, r.field(doc, "top level", "model"), spec, max_added);
    for (const AddedToken& a : added)
      if (spec.vocab[a.id].empty()) spec.vocab[a.id] = a.content;
    spec.added_tokens = std::move(added);
    if (doc.contains("normalizer")) read_normalizer(r, doc["normalizer"], "normalizer", spec.normalizer);
    if (doc.contains("pre_tokenizer"))
      read_pre_tokenizer(r, doc["pre_tokenizer"], "pre_tokenizer", spec.pre_tokenizer);
    if (doc.contains("decoder")) read_decoder(r, doc["decoder"], "decoder", spec.decoder);
    if (doc.contains("post_processor"))
      read_post_processor(r, doc["post_processor"], "post_processor", spec);
  } catch (const json::exception& e) {
    throw Error(source + ": malformed tokenizer.json: " + e.what());
  }
  bool byte_level = false;
  for (const PreTokenizerStep& p : spec.pre_tokenizer)
    if (p.kind == PreTokenizerStep::Kind::kByteLevel) byte_level = true;
  if (byte_level && spec.pre_tokenizer.back().kind != PreTokenizerStep::Kind::kByteLevel)
    r.fail("pre_tokenizer", "ByteLevel must be the last pre-tokenizer");
  spec.model = byte_level ? TokenizerModel::kByteLevelBpe : TokenizerModel::kSentencePieceBpe;
  return spec;
}

std::optional<json> read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw Error(path.string() + ": not valid JSON: " + e.what());
  }
}

int32_t find_piece(const TokenizerSpec& spec, const std::string& piece) {
  for (const AddedToken& a : spec.added_tokens)
    if (a.content == piece) return a.id;
  for (size_t id = 0; id < spec.vocab.size(); ++id)
    if (spec.vocab[id] == piece) return int32_t(id);
  return -1;
}

// tokenizer.json does not say which tokens are BOS and EOS; the files HF keeps beside it do.
void read_sibling_configs(const std::filesystem::path& dir, TokenizerSpec& spec) {
  auto token_name = [](const json& v) -> std::string {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string())
      return v["content"].get<std::string>();
    return {};
  };
  auto add_eos = [&](int64_t id) {
    if (id < 0 || id >= int64_t(spec.vocab.size())) return;
    for (int32_t e : spec.eos_ids)
      if (e == id) return;
    spec.eos_ids.push_back(int32_t(id));
  };
  if (auto cfg = read_json_file(dir / "tokenizer_config.json"); cfg && cfg->is_object()) {
    if (spec.bos_id < 0 && cfg->contains("bos_token"))
      spec.bos_id = find_piece(spec, token_name((*cfg)["bos_token"]));
    if (cfg->contains("eos_token")) add_eos(find_piece(spec, token_name((*cfg)["eos_token"])));
  }
  for (const char* name : {"generation_config.json", "config.json"}) {
    auto cfg = read_json_file(dir / name);
    if (!cfg || !cfg->is_object() || !cfg->contains("eos_token_id")) continue;
    const json& e = (*cfg)["eos_token_id"];
    if (e.is_number_integer()) add_eos(e.get<int64_t>());
    if (e.is_array())
      for (const json& v : e)
        if (v.is_number_integer()) add_eos(v.get<int64_t>());
    break;
  }
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_tokenizer_json_text(std::string_view json_text,
                                                              const std::string& source) {
  return from_spec(spec_from_json(json_text, source));
}

std::unique_ptr<Tokenizer> Tokenizer::from_tokenizer_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  TokenizerSpec spec = spec_from_json(ss.str(), path.string());
  read_sibling_configs(path.parent_path(), spec);
  return from_spec(std::move(spec));
}

}  // namespace mk
