// Normalizer steps, applied in order to one segment of text between added tokens (HF normalizes
// each such segment on its own, which is why Llama 2 gets a "▁" after every special token).
#include "tokenizer/normalizer.h"

#include "tokenizer/unicode.h"

namespace mk {

std::string normalize(const std::vector<NormalizerStep>& steps, std::string_view text) {
  std::string s(text);
  for (const NormalizerStep& step : steps) {
    switch (step.kind) {
      case NormalizerStep::Kind::kNfc:
        s = unicode::nfc(s);
        break;
      case NormalizerStep::Kind::kPrepend:
        // HF prepends only to non-empty text.
        if (!s.empty()) s.insert(0, step.text);
        break;
      case NormalizerStep::Kind::kReplace: {
        if (step.text.empty()) break;
        std::string r;
        r.reserve(s.size());
        size_t pos = 0;
        for (size_t hit; (hit = s.find(step.text, pos)) != std::string::npos;
             pos = hit + step.text.size()) {
          r.append(s, pos, hit - pos);
          r += step.replacement;
        }
        r.append(s, pos, std::string::npos);
        s.swap(r);
        break;
      }
    }
  }
  return s;
}

}  // namespace mk
