// Block tables and scalar dequantizers for the ggml types in GgmlType. Layouts follow ggml's
// block_* structs (little-endian, packed, fp16 scales); each function decodes one block.
#include "model/gguf/dequant.h"

#include <cassert>
#include <cstring>

namespace mk {
namespace {

struct TypeTraits {
  const char* name;
  int64_t block_size;
  size_t block_bytes;
};

constexpr int64_t kQK = 32;    // elements per block of the "legacy" quants
constexpr int64_t kQKK = 256;  // elements per super-block of the K-quants

// Indexed by the raw type number; block_size 0 marks numbers outside GgmlType (names kept for
// error messages only).
constexpr TypeTraits kTraits[] = {
    {"F32", 1, 4},         {"F16", 1, 2},        {"Q4_0", kQK, 18},     {"Q4_1", kQK, 20},
    {"Q4_2", 0, 0},        {"Q4_3", 0, 0},       {"Q5_0", kQK, 22},     {"Q5_1", kQK, 24},
    {"Q8_0", kQK, 34},     {"Q8_1", kQK, 36},    {"Q2_K", kQKK, 84},    {"Q3_K", kQKK, 110},
    {"Q4_K", kQKK, 144},   {"Q5_K", kQKK, 176},  {"Q6_K", kQKK, 210},   {"Q8_K", kQKK, 292},
    {"IQ2_XXS", 0, 0},     {"IQ2_XS", 0, 0},     {"IQ3_XXS", 0, 0},     {"IQ1_S", 0, 0},
    {"IQ4_NL", 0, 0},      {"IQ3_S", 0, 0},      {"IQ2_S", 0, 0},       {"IQ4_XS", 0, 0},
    {"I8", 0, 0},          {"I16", 0, 0},        {"I32", 0, 0},         {"I64", 0, 0},
    {"F64", 0, 0},         {"IQ1_M", 0, 0},      {"BF16", 1, 2},        {"Q4_0_4_4", 0, 0},
    {"Q4_0_4_8", 0, 0},    {"Q4_0_8_8", 0, 0},   {"TQ1_0", 0, 0},       {"TQ2_0", 0, 0},
    {"IQ4_NL_4_4", 0, 0},  {"IQ4_NL_4_8", 0, 0}, {"IQ4_NL_8_8", 0, 0},  {"MXFP4", 0, 0},
    {"NVFP4", 0, 0},       {"Q1_0", 0, 0},
};
constexpr uint32_t kNumTraits = sizeof(kTraits) / sizeof(kTraits[0]);

const TypeTraits& traits(GgmlType t) {
  auto i = static_cast<uint32_t>(t);
  assert(ggml_type_known(i));
  return kTraits[i];
}

// Exact IEEE half -> float (subnormals, infinities and NaN payloads included).
float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    // Subnormal or zero: mant * 2^-24 is exact in float.
    float v = static_cast<float>(mant) * 0x1p-24f;
    std::memcpy(&bits, &v, 4);
    bits |= sign;
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_bits_to_float(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Blocks are packed structs of odd sizes, so every multi-byte field is read with memcpy.
uint16_t rd16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
float rdh(const uint8_t* p) { return half_to_float(rd16(p)); }

// Q4_0 / Q4_1: 16 bytes of nibbles; low nibbles are elements 0..15, high nibbles 16..31.
void block_q4(const uint8_t* qs, float d, float m, bool has_min, float* y) {
  for (int j = 0; j < 16; ++j) {
    int lo = qs[j] & 0x0f, hi = qs[j] >> 4;
    if (has_min) {
      y[j] = d * static_cast<float>(lo) + m;
      y[j + 16] = d * static_cast<float>(hi) + m;
    } else {
      y[j] = d * static_cast<float>(lo - 8);
      y[j + 16] = d * static_cast<float>(hi - 8);
    }
  }
}

// Q5_0 / Q5_1: as Q4 plus a 32-bit mask holding bit 4 of element j at bit j.
void block_q5(const uint8_t* qh4, const uint8_t* qs, float d, float m, bool has_min, float* y) {
  uint32_t qh;
  std::memcpy(&qh, qh4, 4);
  for (int j = 0; j < 16; ++j) {
    int lo = (qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
    int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    if (has_min) {
      y[j] = d * static_cast<float>(lo) + m;
      y[j + 16] = d * static_cast<float>(hi) + m;
    } else {
      y[j] = d * static_cast<float>(lo - 16);
      y[j + 16] = d * static_cast<float>(hi - 16);
    }
  }
}

// The 12 packed bytes of Q4_K / Q5_K hold eight 6-bit scales and eight 6-bit mins.
void k_scale_min(const uint8_t* s, int j, int& sc, int& mn) {
  if (j < 4) {
    sc = s[j] & 63;
    mn = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
    mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q2_K: scales[16] (low nibble scale, high nibble min), qs[64] (2-bit), d, dmin.
void block_q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* qs = b + 16;
  float d = rdh(b + 80), dmin = rdh(b + 82);
  for (int e = 0; e < kQKK; ++e) {
    int half = e / 128, shift = (e % 128) / 32, l = e % 32;
    int q = (qs[half * 32 + l] >> (2 * shift)) & 3;
    uint8_t s = scales[e / 16];
    y[e] = (d * static_cast<float>(s & 0x0f)) * static_cast<float>(q) -
           dmin * static_cast<float>(s >> 4);
  }
}

// Q3_K: hmask[32] (bit 2 of each value, inverted), qs[64] (low 2 bits), scales[12] (16 signed
// 6-bit scales: low nibbles in bytes 0..7, high pairs in bytes 8..11), d.
void block_q3_k(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const uint8_t* sc = b + 96;
  float d = rdh(b + 108);
  int scale[16];
  for (int j = 0; j < 16; ++j) {
    int lo = (sc[j % 8] >> (4 * (j / 8))) & 0x0f;
    int hi = (sc[8 + j % 4] >> (2 * (j / 4))) & 3;
    scale[j] = (lo | (hi << 4)) - 32;
  }
  for (int e = 0; e < kQKK; ++e) {
    int half = e / 128, shift = (e % 128) / 32, l = e % 32;
    int q = (qs[half * 32 + l] >> (2 * shift)) & 3;
    if (((hmask[l] >> (e / 32)) & 1) == 0) q -= 4;
    y[e] = (d * static_cast<float>(scale[e / 16])) * static_cast<float>(q);
  }
}

// Q4_K: d, dmin, scales[12], qs[128]; each 64 elements use 32 bytes, low nibbles first.
void block_q4_k(const uint8_t* b, float* y) {
  float d = rdh(b), dmin = rdh(b + 2);
  const uint8_t* s = b + 4;
  const uint8_t* qs = b + 16;
  for (int e = 0; e < kQKK; ++e) {
    int chunk = e / 64, nib = (e % 64) / 32, l = e % 32;
    int q = (qs[chunk * 32 + l] >> (4 * nib)) & 0x0f;
    int sc, mn;
    k_scale_min(s, e / 32, sc, mn);
    y[e] = (d * static_cast<float>(sc)) * static_cast<float>(q) - dmin * static_cast<float>(mn);
  }
}

// Q5_K: Q4_K plus qh[32], bit (e / 32) of qh[e % 32] being bit 4 of element e.
void block_q5_k(const uint8_t* b, float* y) {
  float d = rdh(b), dmin = rdh(b + 2);
  const uint8_t* s = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int e = 0; e < kQKK; ++e) {
    int chunk = e / 64, nib = (e % 64) / 32, l = e % 32;
    int q = ((qs[chunk * 32 + l] >> (4 * nib)) & 0x0f) | (((qh[l] >> (e / 32)) & 1) << 4);
    int sc, mn;
    k_scale_min(s, e / 32, sc, mn);
    y[e] = (d * static_cast<float>(sc)) * static_cast<float>(q) - dmin * static_cast<float>(mn);
  }
}

// Q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16], d. Each half of 128
// elements uses 64 ql bytes (low nibbles for its first 64 elements) and 32 qh bytes.
void block_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  float d = rdh(b + 208);
  for (int e = 0; e < kQKK; ++e) {
    int half = e / 128, r = e % 128;
    int lo = (ql[half * 64 + r % 64] >> (4 * (r / 64))) & 0x0f;
    int hi = (qh[half * 32 + r % 32] >> (2 * (r / 32))) & 3;
    int q = (lo | (hi << 4)) - 32;
    y[e] = (d * static_cast<float>(sc[e / 16])) * static_cast<float>(q);
  }
}

}  // namespace

bool ggml_type_known(uint32_t type) { return type < kNumTraits && kTraits[type].block_size > 0; }

const char* ggml_type_name(uint32_t type) {
  if (type < kNumTraits) return kTraits[type].name;
  return "unknown";
}

int64_t ggml_block_size(GgmlType t) { return traits(t).block_size; }
size_t ggml_block_bytes(GgmlType t) { return traits(t).block_bytes; }

size_t ggml_row_bytes(GgmlType t, int64_t n) {
  const TypeTraits& tt = traits(t);
  assert(n % tt.block_size == 0);
  return static_cast<size_t>(n / tt.block_size) * tt.block_bytes;
}

void dequantize_row(GgmlType type, const std::byte* src, float* dst, int64_t n) {
  const auto* p = reinterpret_cast<const uint8_t*>(src);
  const TypeTraits& tt = traits(type);
  assert(n % tt.block_size == 0);
  if (type == GgmlType::F32) {  // the common unquantized case: skip the per-element switch
    std::memcpy(dst, p, static_cast<size_t>(n) * 4);
    return;
  }
  const int64_t nb = n / tt.block_size;
  for (int64_t i = 0; i < nb; ++i, p += tt.block_bytes, dst += tt.block_size) {
    switch (type) {
      case GgmlType::F32: break;  // handled above
      case GgmlType::F16: dst[0] = half_to_float(rd16(p)); break;
      case GgmlType::BF16: dst[0] = bf16_bits_to_float(rd16(p)); break;
      case GgmlType::Q4_0: block_q4(p + 2, rdh(p), 0.0f, false, dst); break;
      case GgmlType::Q4_1: block_q4(p + 4, rdh(p), rdh(p + 2), true, dst); break;
      case GgmlType::Q5_0: block_q5(p + 2, p + 6, rdh(p), 0.0f, false, dst); break;
      case GgmlType::Q5_1: block_q5(p + 4, p + 8, rdh(p), rdh(p + 2), true, dst); break;
      case GgmlType::Q8_0:
      case GgmlType::Q8_1: {  // Q8_1 also stores the block sum after d; values ignore it
        float d = rdh(p);
        const auto* qs = reinterpret_cast<const int8_t*>(p + (type == GgmlType::Q8_0 ? 2 : 4));
        for (int j = 0; j < kQK; ++j) dst[j] = static_cast<float>(qs[j]) * d;
        break;
      }
      case GgmlType::Q8_K: {  // f32 d, int8 qs[256], int16 bsums[16] (unused here)
        float d;
        std::memcpy(&d, p, 4);
        const auto* qs = reinterpret_cast<const int8_t*>(p + 4);
        for (int j = 0; j < kQKK; ++j) dst[j] = static_cast<float>(qs[j]) * d;
        break;
      }
      case GgmlType::Q2_K: block_q2_k(p, dst); break;
      case GgmlType::Q3_K: block_q3_k(p, dst); break;
      case GgmlType::Q4_K: block_q4_k(p, dst); break;
      case GgmlType::Q5_K: block_q5_k(p, dst); break;
      case GgmlType::Q6_K: block_q6_k(p, dst); break;
    }
  }
}

}  // namespace mk
