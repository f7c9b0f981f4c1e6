// The prompt path of `mk generate` before the engine, with arbitrary bytes (invalid UTF-8
// included): encode the prompt, decode it back (the --truncate echo), then stream the ids through
// StreamDecoder and StopStrings exactly as Generator does with generated tokens.
// Input, cut at NUL bytes: [0] a flags byte (tokenizer: byte-level or SentencePiece; add_special;
// skip_special), [1] the prompt, [2..] stop strings.
// Checks the documented contracts: encode() ids are in the vocabulary; the streamed text equals
// decode() of the same ids when the prompt is valid UTF-8; StopStrings shows exactly the text
// before the first stop string, or everything when none appears.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "generate/stop_strings.h"
#include "model/error.h"
#include "tokenizer/tokenizer.h"

namespace {

struct Tokenizers {
  std::unique_ptr<mk::Tokenizer> byte_level = mk::fuzz::load_test_tokenizer("mini-smollm.json");
  std::unique_ptr<mk::Tokenizer> sentencepiece = mk::fuzz::load_test_tokenizer("mini-llama2.json");
  std::unique_ptr<mk::Tokenizer> gpt2 = mk::fuzz::load_test_tokenizer("mini-gpt2.json");
};

const Tokenizers& tokenizers() {
  static const Tokenizers t;
  return t;
}

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = uint8_t(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) n = 1, cp = c;
    else if ((c & 0xE0) == 0xC0) n = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) n = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) n = 4, cp = c & 0x07;
    else return false;
    if (i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      const auto d = uint8_t(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)tokenizers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = mk::fuzz::split(data, size);
  const uint8_t flags = parts[0].empty() ? 0 : uint8_t(parts[0][0]);
  const std::string_view prompt = parts.size() > 1 ? parts[1] : parts[0];
  std::vector<std::string> stops;
  for (size_t i = 2; i < parts.size(); ++i) stops.emplace_back(parts[i]);

  const mk::Tokenizer& tok = (flags & 3) == 1   ? *tokenizers().sentencepiece
                             : (flags & 3) == 2 ? *tokenizers().gpt2
                                                : *tokenizers().byte_level;
  const bool add_special = (flags & 4) != 0;
  const bool skip_special = (flags & 8) != 0;
  try {
    const std::vector<int32_t> ids = tok.encode(prompt, add_special);
    for (int32_t id : ids)
      if (id < 0 || id >= tok.vocab_size()) mk::fuzz::invariant_failed("encode() gave an id outside the vocabulary");
    const std::string whole = tok.decode(ids, skip_special);

    // As Generator: every token through the stream decoder, then the stop strings.
    mk::StreamDecoder decoder(tok, skip_special);
    mk::StopStrings stop(stops);
    std::string streamed, shown;
    for (int32_t id : ids) {
      const std::string piece = decoder.push(id);
      streamed += piece;
      shown += stop.push(piece);
    }
    const std::string tail = decoder.flush();
    streamed += tail;
    shown += stop.push(tail);
    shown += stop.flush();

    if (valid_utf8(prompt) && streamed != whole)
      mk::fuzz::invariant_failed("StreamDecoder text differs from decode() for a valid UTF-8 prompt");
    if (streamed.compare(0, shown.size(), shown) != 0)
      mk::fuzz::invariant_failed("StopStrings showed text that was not streamed");
    if (stop.stopped()) {
      if (stop.matched().empty() || streamed.compare(shown.size(), stop.matched().size(), stop.matched()) != 0)
        mk::fuzz::invariant_failed("StopStrings stopped but the stop string does not follow the shown text");
      for (const std::string& s : stops)
        if (!s.empty() && shown.find(s) != std::string::npos)
          mk::fuzz::invariant_failed("StopStrings showed a stop string");
    } else {
      if (shown != streamed) mk::fuzz::invariant_failed("StopStrings lost text without stopping");
      for (const std::string& s : stops)
        if (!s.empty() && streamed.find(s) != std::string::npos)
          mk::fuzz::invariant_failed("StopStrings missed a stop string");
    }
  } catch (const mk::Error&) {
  }
  return 0;
}
