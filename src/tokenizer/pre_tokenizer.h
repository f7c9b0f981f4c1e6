// Pre-tokenization: cutting normalized text into the words BPE runs on. The regex splits of the
// GPT-2, Llama 3 and Qwen2 families are hand-written matchers, since std::regex lacks \p{L}.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace mk::pretok {

// Appends the pieces `pattern` cuts `text` into, in order; they tile the text exactly.
void split(SplitPattern pattern, std::string_view text, std::vector<std::string_view>& out);
// HF Digits: every \p{N} character alone (individual) or each run of them, between the rest.
void split_digits(std::string_view text, bool individual, std::vector<std::string_view>& out);

// Runs `steps` over one segment of normalized text and appends the non-empty words. `first`:
// the segment is the input's first split (Metaspace's prepend_scheme "first").
void pre_tokenize(const std::vector<PreTokenizerStep>& steps, std::string_view text, bool first,
                  std::vector<std::string>& out);

// The exact regex strings of tokenizer.json Split steps that map onto SplitPattern values.
bool pattern_from_regex(std::string_view regex, SplitPattern* pattern);

}  // namespace mk::pretok
