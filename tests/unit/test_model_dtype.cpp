// Tests of DType helpers and the F16/BF16 <-> F32 conversions (tensor_source.cpp): exact values,
// subnormals, infinities, NaN and round-to-nearest-even.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "model/error.h"
#include "model/tensor_source.h"

namespace mk {
namespace {

TEST(DType, SizesAndNames) {
  EXPECT_EQ(dtype_size(DType::F32), 4u);
  EXPECT_EQ(dtype_size(DType::F16), 2u);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_STREQ(dtype_name(DType::F32), "F32");
  EXPECT_STREQ(dtype_name(DType::F16), "F16");
  EXPECT_STREQ(dtype_name(DType::BF16), "BF16");
}

TEST(DType, F16ToF32) {
  EXPECT_EQ(f16_to_f32(0x0000), 0.0f);
  EXPECT_TRUE(std::signbit(f16_to_f32(0x8000)));
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x3555), 0.333251953125f);
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);               // largest normal
  EXPECT_EQ(f16_to_f32(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(f16_to_f32(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(f16_to_f32(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(f16_to_f32(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7e00)));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7c01)));  // signalling payload stays NaN, not inf
}

TEST(DType, F16ToF32AllFiniteValuesRoundTripThroughDouble) {
  // Every finite half is sign * mant * 2^(exp-25) in closed form; compare all 63488 of them.
  for (uint32_t v = 0; v < 0x10000; ++v) {
    uint32_t exp = (v >> 10) & 0x1f, mant = v & 0x3ff;
    if (exp == 0x1f) continue;
    double expect = exp ? std::ldexp(1024.0 + mant, int(exp) - 25) : std::ldexp(double(mant), -24);
    if (v & 0x8000) expect = -expect;
    ASSERT_EQ(f16_to_f32(uint16_t(v)), float(expect)) << std::hex << v;
  }
}

TEST(DType, Bf16) {
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xc040), -3.0f);
  EXPECT_EQ(bf16_to_f32(0x7f80), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(bf16_to_f32(0x7fc0)));

  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(-3.0f), 0xc040);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  // Ties go to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 -> 1; 1 + 3*2^-8 -> 1 + 2^-6.
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3f808001u)), 0x3f81);  // above half: up
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3f807fffu)), 0x3f80);  // below half: down
  // The largest float rounds up to infinity, as round-to-nearest-even demands.
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);
  // NaN stays NaN even when its payload sits only in the low bits that are dropped.
  uint16_t nan = f32_to_bf16(std::bit_cast<float>(0x7f800001u));
  EXPECT_TRUE(std::isnan(bf16_to_f32(nan)));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::bit_cast<float>(0xffffffffu)))));
  EXPECT_TRUE(std::signbit(bf16_to_f32(f32_to_bf16(-std::numeric_limits<float>::quiet_NaN()))));
  // Round trip is exact for every bf16 that is not NaN.
  for (uint32_t v = 0; v < 0x10000; ++v) {
    float f = bf16_to_f32(uint16_t(v));
    if (!std::isnan(f)) {
      ASSERT_EQ(f32_to_bf16(f), v);
    }
  }
}

TEST(DType, ConvertToF32) {
  // Unaligned source: data read from a mapped file need not be aligned.
  std::vector<std::byte> buf(1 + 3 * 4);
  float src[3] = {1.5f, -2.0f, 1e-20f};
  std::memcpy(buf.data() + 1, src, sizeof src);
  TensorInfo info{"t", DType::F32, {3}, buf.data() + 1, 12};
  float out[3];
  convert_to_f32(info, out);
  EXPECT_EQ(out[0], 1.5f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], 1e-20f);

  uint16_t halves[4] = {0x3c00, 0x0001, 0x7c00, 0xc000};
  std::memcpy(buf.data() + 1, halves, sizeof halves);
  TensorInfo h{"h", DType::F16, {2, 2}, buf.data() + 1, 8};
  float hout[4];
  convert_to_f32(h, hout);
  EXPECT_EQ(hout[0], 1.0f);
  EXPECT_EQ(hout[1], std::ldexp(1.0f, -24));
  EXPECT_EQ(hout[2], std::numeric_limits<float>::infinity());
  EXPECT_EQ(hout[3], -2.0f);

  uint16_t b[2] = {0x3f80, 0xc040};
  std::memcpy(buf.data() + 1, b, sizeof b);
  TensorInfo bi{"b", DType::BF16, {2}, buf.data() + 1, 4};
  float bout[2];
  convert_to_f32(bi, bout);
  EXPECT_EQ(bout[0], 1.0f);
  EXPECT_EQ(bout[1], -3.0f);

  TensorInfo empty{"e", DType::F32, {0, 5}, nullptr, 0};
  convert_to_f32(empty, nullptr);  // nothing to do, and no dereference
}

TEST(DType, ConvertRejectsShortBuffer) {
  std::byte buf[4] = {};
  TensorInfo info{"w", DType::F16, {3}, buf, 4};
  float out[3];
  try {
    convert_to_f32(info, out);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "tensor 'w': 4 bytes, 6 needed for its shape and dtype");
  }
}

}  // namespace
}  // namespace mk
