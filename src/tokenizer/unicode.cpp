// UTF-8 handling, character classes and NFC over the generated tables. Lookups binary-search
// sorted ranges after an ASCII fast path, since nearly all tokenized text is ASCII.
#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>
#include <vector>

#include "tokenizer/unicode_tables.h"

namespace mk::unicode {
namespace {

namespace t = mk::unicode_tables;

constexpr uint32_t kHangulBase = 0xAC00, kHangulCount = 11172;
constexpr uint32_t kLeadBase = 0x1100, kVowelBase = 0x1161, kTrailBase = 0x11A7;
constexpr uint32_t kVowelCount = 21, kTrailCount = 28;

std::array<CharClass, 128> make_ascii_classes() {
  std::array<CharClass, 128> out{};
  for (uint32_t c = 0; c < 128; ++c) {
    const t::ClassRange* end = t::kClassRanges + t::kClassRangeCount;
    auto it = std::upper_bound(t::kClassRanges, end, c,
                               [](uint32_t v, const t::ClassRange& r) { return v < r.first; });
    out[c] = (it != t::kClassRanges && c <= (it - 1)->last) ? CharClass((it - 1)->cls)
                                                           : CharClass::kOther;
  }
  return out;
}

const std::array<CharClass, 128>& ascii_classes() {
  static const std::array<CharClass, 128> table = make_ascii_classes();
  return table;
}

inline bool is_cont(uint8_t b) { return (b & 0xC0) == 0x80; }

const uint32_t* decomposition(uint32_t cp, uint32_t* len) {
  const t::Decomposition* end = t::kDecompositions + t::kDecompositionCount;
  auto it = std::lower_bound(t::kDecompositions, end, cp,
                             [](const t::Decomposition& d, uint32_t v) { return d.cp < v; });
  if (it == end || it->cp != cp) return nullptr;
  *len = it->length;
  return t::kDecompositionData + it->offset;
}

uint32_t compose(uint32_t a, uint32_t b) {
  if (a >= kLeadBase && a < kLeadBase + 19 && b >= kVowelBase && b < kVowelBase + kVowelCount)
    return kHangulBase + ((a - kLeadBase) * kVowelCount + (b - kVowelBase)) * kTrailCount;
  if (a >= kHangulBase && a < kHangulBase + kHangulCount && (a - kHangulBase) % kTrailCount == 0 &&
      b > kTrailBase && b < kTrailBase + kTrailCount)
    return a + (b - kTrailBase);
  const t::Composition* end = t::kCompositions + t::kCompositionCount;
  auto it = std::lower_bound(t::kCompositions, end, std::pair{a, b},
                             [](const t::Composition& c, std::pair<uint32_t, uint32_t> v) {
                               return c.first != v.first ? c.first < v.first : c.second < v.second;
                             });
  return (it != end && it->first == a && it->second == b) ? it->composite : 0;
}

// A decomposed character: ill-formed bytes keep their raw byte so they pass through NFC intact.
struct Unit {
  uint32_t cp;
  uint8_t ccc;
  uint8_t raw;
};

void decompose_into(uint32_t cp, std::vector<Unit>& out) {
  if (cp >= kHangulBase && cp < kHangulBase + kHangulCount) {
    uint32_t s = cp - kHangulBase;
    out.push_back({kLeadBase + s / (kVowelCount * kTrailCount), 0, 0});
    out.push_back({kVowelBase + (s % (kVowelCount * kTrailCount)) / kTrailCount, 0, 0});
    if (s % kTrailCount) out.push_back({kTrailBase + s % kTrailCount, 0, 0});
    return;
  }
  uint32_t len = 0;
  if (const uint32_t* d = decomposition(cp, &len)) {
    for (uint32_t i = 0; i < len; ++i) out.push_back({d[i], combining_class(d[i]), 0});
    return;
  }
  out.push_back({cp, combining_class(cp), 0});
}

}  // namespace

Decoded decode_utf8(std::string_view text, size_t pos) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  size_t n = text.size();
  uint8_t b0 = s[pos];
  if (b0 < 0x80) return {b0, 1};
  uint32_t need;
  uint32_t cp;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1, cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2, cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3, cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {kInvalid, 1};
  }
  for (uint32_t i = 1; i <= need; ++i) {
    if (pos + i >= n) return {kInvalid, i};
    uint8_t b = s[pos + i];
    if (i == 1 ? (b < lo || b > hi) : !is_cont(b)) return {kInvalid, i};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, need + 1};
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

std::string to_valid_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    Decoded d = decode_utf8(bytes, i);
    if (d.cp == kInvalid)
      out += "\xEF\xBF\xBD";
    else
      out.append(bytes.substr(i, d.len));
    i += d.len;
  }
  return out;
}

size_t complete_prefix_length(std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    Decoded d = decode_utf8(bytes, i);
    // Ill-formed only because the bytes ran out: a later byte may still complete it.
    if (d.cp == kInvalid && i + d.len == bytes.size() &&
        (uint8_t(bytes[i]) >= 0xC2 && uint8_t(bytes[i]) <= 0xF4))
      return i;
    i += d.len;
  }
  return i;
}

CharClass char_class(uint32_t cp) {
  if (cp < 128) return ascii_classes()[cp];
  const t::ClassRange* end = t::kClassRanges + t::kClassRangeCount;
  auto it = std::upper_bound(t::kClassRanges, end, cp,
                             [](uint32_t v, const t::ClassRange& r) { return v < r.first; });
  if (it == t::kClassRanges) return CharClass::kOther;
  --it;
  return cp <= it->last ? CharClass(it->cls) : CharClass::kOther;
}

uint8_t combining_class(uint32_t cp) {
  if (cp < 0x300) return 0;
  const t::CombiningRange* end = t::kCombiningRanges + t::kCombiningRangeCount;
  auto it = std::upper_bound(t::kCombiningRanges, end, cp,
                             [](uint32_t v, const t::CombiningRange& r) { return v < r.first; });
  if (it == t::kCombiningRanges) return 0;
  --it;
  return cp <= it->last ? uint8_t(it->ccc) : 0;
}

std::string nfc(std::string_view text) {
  // Below U+0300 nothing decomposes or combines, which covers ASCII and Latin-1 text.
  bool trivial = true;
  for (unsigned char c : text) {
    if (c >= 0xCC) {
      trivial = false;
      break;
    }
  }
  if (trivial) return std::string(text);

  std::vector<Unit> units;
  units.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    Decoded d = decode_utf8(text, i);
    if (d.cp == kInvalid) {
      for (uint32_t k = 0; k < d.len; ++k) units.push_back({kInvalid, 0, uint8_t(text[i + k])});
    } else {
      decompose_into(d.cp, units);
    }
    i += d.len;
  }
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < units.size();) {
    if (units[i].ccc == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < units.size() && units[j].ccc != 0) ++j;
    std::stable_sort(units.begin() + i, units.begin() + j,
                     [](const Unit& a, const Unit& b) { return a.ccc < b.ccc; });
    i = j;
  }
  // Canonical composition: a character joins the last starter unless a character between them
  // has the same or a higher class (it is blocked).
  std::vector<Unit> out;
  out.reserve(units.size());
  size_t starter = SIZE_MAX;
  for (const Unit& u : units) {
    if (u.cp != kInvalid && starter != SIZE_MAX) {
      uint8_t last_ccc = out.size() - 1 == starter ? 0 : out.back().ccc;
      bool blocked = out.size() - 1 != starter && (last_ccc == 0 || last_ccc >= u.ccc);
      if (!blocked) {
        if (uint32_t c = compose(out[starter].cp, u.cp)) {
          out[starter].cp = c;
          continue;
        }
      }
    }
    if (u.ccc == 0) starter = u.cp == kInvalid ? SIZE_MAX : out.size();
    out.push_back(u);
  }
  std::string result;
  result.reserve(text.size());
  for (const Unit& u : out) {
    if (u.cp == kInvalid)
      result.push_back(char(u.raw));
    else
      append_utf8(result, u.cp);
  }
  return result;
}

const char* unicode_version() { return unicode_tables::kUnicodeVersion; }

}  // namespace mk::unicode
