// The decoder chain. HF runs every step over the whole list of pieces in turn; the streaming
// variant runs the per-piece part of the same steps on one piece.
#include "tokenizer/decoder.h"

#include "tokenizer/byte_level.h"
#include "tokenizer/unicode.h"

namespace mk {
namespace {

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::string r;
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    r.append(s, pos, hit - pos);
    r += to;
  }
  if (pos == 0) return;
  r.append(s, pos, std::string::npos);
  s.swap(r);
}

// "<0xAB>" -> 0xAB, or -1.
int fallback_byte(std::string_view p) {
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  int v = 0;
  for (char c : p.substr(3, 2)) {
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else return -1;
  }
  return v;
}

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    unicode::Decoded d = unicode::decode_utf8(s, i);
    if (d.cp == unicode::kInvalid) return false;
    i += d.len;
  }
  return true;
}

void strip(std::string& s, std::string_view content, int start, int stop) {
  if (content.empty()) return;
  size_t b = 0, e = s.size();
  for (int k = 0; k < start && s.compare(b, content.size(), content) == 0; ++k) b += content.size();
  for (int k = 0; k < stop && e >= b + content.size() &&
                  s.compare(e - content.size(), content.size(), content) == 0; ++k)
    e -= content.size();
  s = s.substr(b, e - b);
}

}  // namespace

std::string run_decoder(const std::vector<DecoderStep>& steps, std::vector<std::string> pieces) {
  using K = DecoderStep::Kind;
  for (const DecoderStep& step : steps) {
    switch (step.kind) {
      case K::kByteLevel: {
        // Pieces of byte characters become those bytes, any other piece stays as written;
        // the whole is then one string with invalid UTF-8 replaced.
        std::string bytes;
        for (const std::string& p : pieces)
          if (!byte_level::piece_to_bytes(p, bytes)) bytes += p;
        pieces.assign(1, unicode::to_valid_utf8(bytes));
        break;
      }
      case K::kReplace:
        for (std::string& p : pieces) replace_all(p, step.text, step.replacement);
        break;
      case K::kByteFallback: {
        // A run of <0xXX> pieces becomes its text if that is valid UTF-8, else one U+FFFD each.
        std::vector<std::string> out;
        std::string run;
        size_t run_len = 0;
        auto flush = [&] {
          if (!run_len) return;
          if (is_valid_utf8(run)) out.push_back(run);
          else
            for (size_t k = 0; k < run_len; ++k) out.emplace_back("\xEF\xBF\xBD");
          run.clear();
          run_len = 0;
        };
        for (std::string& p : pieces) {
          int b = fallback_byte(p);
          if (b >= 0) {
            run.push_back(char(b));
            ++run_len;
          } else {
            flush();
            out.push_back(std::move(p));
          }
        }
        flush();
        pieces.swap(out);
        break;
      }
      case K::kFuse: {
        std::string all;
        for (const std::string& p : pieces) all += p;
        pieces.assign(1, std::move(all));
        break;
      }
      case K::kStrip:
        for (std::string& p : pieces) strip(p, step.text, step.start, step.stop);
        break;
      case K::kMetaspace:
        for (size_t i = 0; i < pieces.size(); ++i) {
          replace_all(pieces[i], step.text, " ");
          if (i == 0 && step.start && !pieces[i].empty() && pieces[i][0] == ' ')
            pieces[i].erase(0, 1);
        }
        break;
    }
  }
  std::string text;
  for (const std::string& p : pieces) text += p;
  return unicode::to_valid_utf8(text);
}

void piece_bytes(const std::vector<DecoderStep>& steps, std::string_view piece, size_t index,
                 std::string& out) {
  using K = DecoderStep::Kind;
  std::string s(piece);
  for (const DecoderStep& step : steps) {
    switch (step.kind) {
      case K::kByteLevel: {
        std::string bytes;
        if (byte_level::piece_to_bytes(s, bytes)) s.swap(bytes);
        break;
      }
      case K::kReplace:
        replace_all(s, step.text, step.replacement);
        break;
      case K::kByteFallback:
        if (int b = fallback_byte(s); b >= 0) s.assign(1, char(b));
        break;
      case K::kFuse:
      case K::kStrip:
        break;
      case K::kMetaspace:
        replace_all(s, step.text, " ");
        if (index == 0 && step.start && !s.empty() && s[0] == ' ') s.erase(0, 1);
        break;
    }
  }
  out += s;
}

int leading_strip(const std::vector<DecoderStep>& steps, std::string* content) {
  for (const DecoderStep& step : steps)
    if (step.kind == DecoderStep::Kind::kStrip && step.start > 0) {
      *content = step.text;
      return step.start;
    }
  return 0;
}

}  // namespace mk
