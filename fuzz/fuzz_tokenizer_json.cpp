// tokenizer.json: Tokenizer::from_tokenizer_json_text on the input up to its first NUL byte; the
// rest (or a fixed mixed-script text) is then encoded and decoded, whole and streamed.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "model/error.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = mk::fuzz::split(data, size, 2);
  const std::string_view text =
      parts.size() > 1 ? parts[1] : std::string_view("Hello world, <s> 123 caf\xc3\xa9  \xe4\xbd\xa0\xe5\xa5\xbd\n\t\xff!");
  try {
    auto tok = mk::Tokenizer::from_tokenizer_json_text(parts[0], "fuzz/tokenizer.json");
    const int32_t n = tok->vocab_size();
    (void)tok->bos_id();
    (void)tok->eos_ids();
    for (int32_t id = 0; id < n && id < 64; ++id) {
      (void)tok->is_special(id);
      const std::string piece = tok->token_text(id);
      (void)tok->token_id(piece);
    }
    for (bool add_special : {true, false}) {
      const std::vector<int32_t> ids = tok->encode(text, add_special);
      for (int32_t id : ids)
        if (id < 0 || id >= n) mk::fuzz::invariant_failed("encode() gave an id outside the vocabulary");
      (void)tok->decode(ids);
      (void)tok->decode(ids, true);
      mk::StreamDecoder sd(*tok);
      std::string streamed;
      for (int32_t id : ids) streamed += sd.push(id);
      streamed += sd.flush();
    }
    // Every id of a small vocabulary, one after another, decoded whole and streamed.
    std::vector<int32_t> all;
    for (int32_t id = 0; id < n && id < 512; ++id) all.push_back(id);
    (void)tok->decode(all, false);
    mk::StreamDecoder sd(*tok, true);
    for (int32_t id : all) (void)sd.push(id);
    (void)sd.flush();
    const int32_t bad[] = {n};
    try {
      (void)tok->decode(bad);
      mk::fuzz::invariant_failed("decode() accepted an id outside the vocabulary");
    } catch (const mk::Error&) {
    }
  } catch (const mk::Error&) {
  }
  return 0;
}
