// Tests of the ggml dequantizers against gguf-py's numpy reference (tests/data/gguf/types.gguf,
// written by make_fixtures.py), plus the types gguf-py cannot produce, checked by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "model/gguf/dequant.h"
#include "model/gguf/gguf_file.h"

namespace mk {
namespace {

const std::filesystem::path kData = std::filesystem::path(MK_TEST_DATA_DIR) / "gguf";

std::vector<float> dequantize(const GgufTensorInfo& t) {
  int64_t rows = 1;
  for (size_t d = 1; d < t.ne.size(); ++d) rows *= static_cast<int64_t>(t.ne[d]);
  const auto n = static_cast<int64_t>(t.ne[0]);
  std::vector<float> out(static_cast<size_t>(rows * n));
  for (int64_t r = 0; r < rows; ++r)
    dequantize_row(t.type, t.data + r * ggml_row_bytes(t.type, n), out.data() + r * n, n);
  return out;
}

// Bit-identical in practice; the slack only covers a compiler fusing d*q - m into an FMA.
bool same(float got, float want) {
  if (std::isnan(want)) return std::isnan(got);
  return got == want || std::fabs(got - want) <= 1e-6f * std::max(1.0f, std::fabs(want));
}

TEST(GgufDequant, MatchesGgufPyForEveryType) {
  auto f = GgufFile::open(kData / "types.gguf");
  int checked = 0;
  for (const GgufTensorInfo& t : f->tensors()) {
    if (t.name.ends_with(".expected")) continue;
    SCOPED_TRACE(t.name);
    EXPECT_STREQ(ggml_type_name(t.type), t.name.c_str());
    const GgufTensorInfo* e = f->find_tensor(t.name + ".expected");
    ASSERT_NE(e, nullptr);
    ASSERT_EQ(e->ne, t.ne);
    ASSERT_EQ(e->type, GgmlType::F32);
    std::vector<float> got = dequantize(t);
    std::vector<float> want(got.size());
    std::memcpy(want.data(), e->data, want.size() * sizeof(float));
    int bad = 0;
    for (size_t i = 0; i < got.size(); ++i)
      if (!same(got[i], want[i]) && ++bad <= 5)
        ADD_FAILURE() << "element " << i << ": got " << got[i] << ", want " << want[i];
    EXPECT_EQ(bad, 0);
    ++checked;
  }
  EXPECT_EQ(checked, 13);  // F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K
}

TEST(GgufDequant, Q8_1AndQ8_K) {
  // Q8_1: fp16 d = 0.5 (0x3800), fp16 sum (ignored), 32 int8.
  std::vector<uint8_t> b(36, 0);
  b[0] = 0x00, b[1] = 0x38, b[2] = 0x12, b[3] = 0x34;
  for (int j = 0; j < 32; ++j) b[4 + j] = static_cast<uint8_t>(static_cast<int8_t>(j - 16));
  float y[256];
  dequantize_row(GgmlType::Q8_1, reinterpret_cast<const std::byte*>(b.data()), y, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.5f * static_cast<float>(j - 16));

  // Q8_K: f32 d, 256 int8, 16 int16 sums (ignored).
  std::vector<uint8_t> k(292, 0xAB);
  float d = -0.25f;
  std::memcpy(k.data(), &d, 4);
  for (int j = 0; j < 256; ++j) k[4 + j] = static_cast<uint8_t>(static_cast<int8_t>(j - 128));
  dequantize_row(GgmlType::Q8_K, reinterpret_cast<const std::byte*>(k.data()), y, 256);
  for (int j = 0; j < 256; ++j) EXPECT_EQ(y[j], -0.25f * static_cast<float>(j - 128));
}

TEST(GgufDequant, Q4_0ByHand) {
  // d = 2.0 (0x4000); byte j holds element j (low nibble) and element j + 16 (high nibble).
  uint8_t b[18] = {0x00, 0x40};
  for (int j = 0; j < 16; ++j) b[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[32];
  dequantize_row(GgmlType::Q4_0, reinterpret_cast<const std::byte*>(b), y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 2.0f * static_cast<float>(j - 8));
    EXPECT_EQ(y[j + 16], 2.0f * static_cast<float>(7 - j));
  }
}

TEST(GgufDequant, HalfSpecialValues) {
  const uint16_t h[] = {0x0001, 0x03ff, 0x0400, 0x3c00, 0x7bff, 0x7c00, 0xfc00, 0x8000, 0x7e00};
  const float want[] = {0x1p-24f, 1023 * 0x1p-24f, 0x1p-14f, 1.0f, 65504.0f,
                        INFINITY, -INFINITY, -0.0f, NAN};
  float y[9];
  dequantize_row(GgmlType::F16, reinterpret_cast<const std::byte*>(h), y, 9);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(y[i], want[i]) << i;
  EXPECT_TRUE(std::signbit(y[7]));
  EXPECT_TRUE(std::isnan(y[8]));
}

TEST(GgufDequant, BlockTables) {
  EXPECT_EQ(ggml_block_size(GgmlType::F32), 1);
  EXPECT_EQ(ggml_block_size(GgmlType::Q8_0), 32);
  EXPECT_EQ(ggml_block_size(GgmlType::Q6_K), 256);
  EXPECT_EQ(ggml_row_bytes(GgmlType::F16, 10), 20u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q4_0, 64), 36u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q4_1, 64), 40u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q5_0, 32), 22u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q5_1, 32), 24u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q2_K, 256), 84u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q3_K, 256), 110u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q4_K, 512), 288u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q5_K, 256), 176u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q6_K, 256), 210u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q8_K, 256), 292u);
  EXPECT_TRUE(ggml_type_known(30));
  EXPECT_FALSE(ggml_type_known(4));
  EXPECT_FALSE(ggml_type_known(20));
  EXPECT_FALSE(ggml_type_known(1000));
  EXPECT_STREQ(ggml_type_name(20u), "IQ4_NL");
  EXPECT_STREQ(ggml_type_name(GgmlType::BF16), "BF16");
  EXPECT_STREQ(ggml_type_name(1000u), "unknown");
}

}  // namespace
}  // namespace mk
