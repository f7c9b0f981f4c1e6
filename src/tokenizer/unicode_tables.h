// Declarations of the generated Unicode data in unicode_tables.cpp (see its generator script in
// tests/data/tokenizer/); only unicode.cpp reads these.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mk::unicode_tables {

// cls: 1 letter (\p{L}), 2 number (\p{N}), 3 White_Space (\s); code points in no range are 0.
struct ClassRange { uint32_t first, last, cls; };
// Canonical combining class, non-zero ranges only.
struct CombiningRange { uint32_t first, last, ccc; };
// Full canonical decomposition of `cp`: kDecompositionData[offset .. offset + length).
struct Decomposition { uint32_t cp, offset, length; };
// NFC composes first + second into composite (primary composites only, Hangul is computed).
struct Composition { uint32_t first, second, composite; };

extern const char kUnicodeVersion[];
extern const ClassRange kClassRanges[];
extern const size_t kClassRangeCount;
extern const CombiningRange kCombiningRanges[];
extern const size_t kCombiningRangeCount;
extern const uint32_t kDecompositionData[];
extern const Decomposition kDecompositions[];
extern const size_t kDecompositionCount;
extern const Composition kCompositions[];
extern const size_t kCompositionCount;

}  // namespace mk::unicode_tables
