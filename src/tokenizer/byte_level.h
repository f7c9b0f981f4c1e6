// GPT-2's byte-to-character mapping: byte-level BPE vocabularies store each byte as a printable
// character (space is "Ġ", newline "Ċ"), so pieces are readable and JSON-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mk::byte_level {

// The character that stands for byte `b`, UTF-8 encoded.
const std::string& byte_to_piece(uint8_t b);
// The byte a character stands for, or -1 when `cp` is not one of the 256 characters.
int byte_of_char(uint32_t cp);
// Maps each character of a byte-level piece back to its byte. Returns false (and leaves `out`
// as it was) if some character is not a byte character, e.g. an added token's own text.
bool piece_to_bytes(std::string_view piece, std::string& out);

}  // namespace mk::byte_level
