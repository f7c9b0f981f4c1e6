// Normalizers: the text rewriting HF applies before pre-tokenization (NFC for Qwen2;
// Prepend("▁") + Replace(" ", "▁") for Llama 2 style SentencePiece tokenizers).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace mk {

std::string normalize(const std::vector<NormalizerStep>& steps, std::string_view text);

}  // namespace mk
