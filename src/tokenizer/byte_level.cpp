// The byte <-> character tables of byte-level BPE, built once on first use and shared by the
// BPE model (encoding) and the ByteLevel decoder.
#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/unicode.h"

namespace mk::byte_level {
namespace {

struct Tables {
  std::array<uint32_t, 256> cp_of_byte{};
  std::array<std::string, 256> piece{};
  std::array<int16_t, 512> byte_of_cp{};  // every mapped character is below U+0200
};

const Tables& tables() {
  static const Tables t = [] {
    Tables t;
    t.byte_of_cp.fill(-1);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      // Printable Latin-1 bytes stand for themselves; the rest are moved past U+00FF in order.
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      uint32_t cp = printable ? b : next++;
      t.cp_of_byte[b] = cp;
      unicode::append_utf8(t.piece[b], cp);
      t.byte_of_cp[cp] = int16_t(b);
    }
    return t;
  }();
  return t;
}

}  // namespace

const std::string& byte_to_piece(uint8_t b) { return tables().piece[b]; }

int byte_of_char(uint32_t cp) { return cp < 512 ? tables().byte_of_cp[cp] : -1; }

bool piece_to_bytes(std::string_view piece, std::string& out) {
  size_t mark = out.size();
  for (size_t i = 0; i < piece.size();) {
    unicode::Decoded d = unicode::decode_utf8(piece, i);
    int b = d.cp == unicode::kInvalid ? -1 : byte_of_char(d.cp);
    if (b < 0) {
      out.resize(mark);
      return false;
    }
    out.push_back(char(b));
    i += d.len;
  }
  return true;
}

}  // namespace mk::byte_level
