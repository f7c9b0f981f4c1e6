// UTF-8 decoding and encoding, the character classes the pre-tokenizers test (\p{L}, \p{N}, \s)
// and NFC normalization, all driven by the generated tables in unicode_tables.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mk::unicode {

// Stands for bytes that are not valid UTF-8; it is in no character class.
inline constexpr uint32_t kInvalid = 0x110000;

struct Decoded {
  uint32_t cp;   // kInvalid for an ill-formed sequence
  uint32_t len;  // bytes consumed: for kInvalid, the maximal ill-formed subpart (>= 1)
};

// Decodes the character at text[pos] (pos < text.size()). Overlong forms, surrogates and values
// past U+10FFFF are ill-formed; the length rule matches Rust's from_utf8_lossy, so one U+FFFD
// replaces each subpart exactly as HF does.
Decoded decode_utf8(std::string_view text, size_t pos);
void append_utf8(std::string& out, uint32_t cp);
// Replaces every ill-formed subpart with U+FFFD.
std::string to_valid_utf8(std::string_view bytes);
// Length of the longest prefix of `bytes` that does not end inside a character that later bytes
// could still complete: what a stream may emit now.
size_t complete_prefix_length(std::string_view bytes);

enum class CharClass : uint8_t { kOther = 0, kLetter = 1, kNumber = 2, kSpace = 3 };
CharClass char_class(uint32_t cp);
inline bool is_letter(uint32_t cp) { return char_class(cp) == CharClass::kLetter; }
inline bool is_number(uint32_t cp) { return char_class(cp) == CharClass::kNumber; }
inline bool is_space(uint32_t cp) { return char_class(cp) == CharClass::kSpace; }

uint8_t combining_class(uint32_t cp);
// Canonical composition (NFC). Ill-formed bytes pass through unchanged.
std::string nfc(std::string_view text);

const char* unicode_version();

}  // namespace mk::unicode
