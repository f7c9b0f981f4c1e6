// ggml tensor types: block geometry (elements and bytes per block) and scalar dequantization of
// one row to float32. Runs once at model load, so it favours clarity over speed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "model/gguf/gguf_file.h"

namespace mk {

// True for the members of GgmlType (a raw number read from a file may be anything).
bool ggml_type_known(uint32_t type);
// "Q4_K", or for numbers outside GgmlType llama.cpp's name when there is one ("IQ4_NL"), else
// "type 123". Never null.
const char* ggml_type_name(uint32_t type);
inline const char* ggml_type_name(GgmlType t) { return ggml_type_name(static_cast<uint32_t>(t)); }

// Elements per block (1 for F32/F16/BF16, 32 for Q*_0/1, 256 for K-quants) and bytes per block.
// Precondition: the type is known.
int64_t ggml_block_size(GgmlType t);
size_t ggml_block_bytes(GgmlType t);
// Bytes of a row of n elements; n must be a multiple of the block size.
size_t ggml_row_bytes(GgmlType t, int64_t n);

// Dequantizes n elements (a multiple of the block size) starting at src. src needs no alignment.
void dequantize_row(GgmlType type, const std::byte* src, float* dst, int64_t n);

}  // namespace mk
