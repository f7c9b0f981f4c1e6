// DType sizes and names, and the F16/BF16 <-> F32 conversions that every loader uses to turn
// stored weights into the engine's float32.
#include "model/tensor_source.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <string>

#include "model/error.h"

namespace mk {

// Model files store little-endian values, read here with plain memcpy.
static_assert(std::endian::native == std::endian::little, "big-endian hosts are not supported");

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
  }
  return "?";
}

float bf16_to_f32(uint16_t v) { return std::bit_cast<float>(static_cast<uint32_t>(v) << 16); }

float f16_to_f32(uint16_t v) {
  uint32_t sign = static_cast<uint32_t>(v & 0x8000u) << 16;
  uint32_t exp = (v >> 10) & 0x1fu;
  uint32_t mant = v & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {  // inf, or NaN with its payload kept
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    // Subnormal: the value is mant * 2^-24, exact in float32.
    float f = std::ldexp(static_cast<float>(mant), -24);
    bits = sign | std::bit_cast<uint32_t>(f);
  }
  return std::bit_cast<float>(bits);
}

uint16_t f32_to_bf16(float v) {
  uint32_t bits = std::bit_cast<uint32_t>(v);
  // Rounding could carry a NaN's payload into the exponent and make it inf; force a quiet NaN.
  if (std::isnan(v)) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

void convert_to_f32(const TensorInfo& info, float* out) {
  // numel() does not check for overflow; loaders validate shapes before a TensorInfo exists.
  size_t count = static_cast<size_t>(info.numel());
  size_t need = count * dtype_size(info.dtype);
  if (info.nbytes < need)
    throw Error("tensor '" + info.name + "': " + std::to_string(info.nbytes) + " bytes, " +
                std::to_string(need) + " needed for its shape and dtype");
  // memcpy per element: the data of a mapped file need not be aligned for its dtype.
  const std::byte* p = info.data;
  switch (info.dtype) {
    case DType::F32:
      if (count) std::memcpy(out, p, count * 4);
      break;
    case DType::F16:
      for (size_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = f16_to_f32(h);
      }
      break;
    case DType::BF16:
      for (size_t i = 0; i < count; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = bf16_to_f32(h);
      }
      break;
  }
}

}  // namespace mk
