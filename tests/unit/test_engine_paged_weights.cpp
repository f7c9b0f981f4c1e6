// The GPU's paged weight layout (src/cuda/paged_weights.h): every element of a matrix gets its own
// place inside paged_size, a page (a group's rows by one column chunk) is one contiguous run made of
// blocks of 8 rows by 8 columns, and 16-byte pieces never straddle a chunk, for the shapes our
// models have and ragged ones.
#include <gtest/gtest.h>

#include <vector>

#include "cuda/paged_weights.h"

namespace mk::cuda {
namespace {

struct Shape {
  uint32_t rows, K;
};

TEST(PagedWeights, EveryElementHasItsOwnPlace) {
  for (const Shape s : {Shape{16, 2048}, Shape{13, 576}, Shape{9, 8960}, Shape{21, 1032}, Shape{3, 8}, Shape{8, 1024}}) {
    const size_t n = paged_size(s.rows, s.K);
    ASSERT_EQ(n % (size_t(kPageRows) * s.K), 0u);
    ASSERT_GE(n, size_t(s.rows) * s.K);
    std::vector<int> seen(n, 0);
    for (uint32_t r = 0; r < s.rows; ++r)
      for (uint32_t k = 0; k < s.K; ++k) {
        const size_t i = paged_index(r, k, s.K);
        ASSERT_LT(i, n) << s.rows << "x" << s.K << " (" << r << ", " << k << ")";
        ++seen[i];
      }
    for (size_t i = 0; i < n; ++i) ASSERT_LE(seen[i], 1) << "two elements share place " << i;
  }
}

TEST(PagedWeights, APageIsOneContiguousRun) {
  const uint32_t K = 2564;  // chunks of 1024, 1024 and 516 (its last block 4 wide)
  for (uint32_t g = 0; g < 3; ++g)
    for (uint32_t c = 0; c < 3; ++c) {
      const uint32_t width = c < 2 ? kPageCols : 516;
      const size_t start = paged_page(g, c, K);
      std::vector<int> seen(size_t(kPageRows) * width, 0);
      for (uint32_t r = 0; r < kPageRows; ++r)
        for (uint32_t k = 0; k < width; ++k) {
          const size_t i = paged_index(g * kPageRows + r, c * kPageCols + k, K);
          ASSERT_GE(i, start);
          ASSERT_LT(i - start, seen.size()) << "page (" << g << ", " << c << ") row " << r << " column " << k;
          ++seen[i - start];
        }
      for (const int n : seen) ASSERT_EQ(n, 1);
    }
}

// The weight pipe's producer finds a group's first page once and steps from it by chunk
// (ops/weight_pipe.cuh): page (g, c) must lie paged_page(0, c, K) past page (g, 0), ragged last
// chunks included.
TEST(PagedWeights, AGroupsPagesFollowItsFirst) {
  for (const uint32_t K : {2048u, 8192u, 1536u, 8960u, 2564u, 576u})
    for (uint32_t g = 0; g < 5; ++g)
      for (uint32_t c = 0; c * kPageCols < K; ++c)
        EXPECT_EQ(paged_page(g, c, K), paged_page(g, 0, K) + paged_page(0, c, K)) << "K " << K << " group " << g << " chunk " << c;
}

// What the pipe's consumers read with ldmatrix: 8 columns from a multiple of 8 of the 8 rows of a
// group, 16 bytes each, one after another.
TEST(PagedWeights, ABlockHoldsEightRowsOfEightColumns) {
  const uint32_t K = 2048;
  for (uint32_t g = 0; g < 2; ++g)
    for (uint32_t k = 0; k < K; k += 8)
      for (uint32_t r = 0; r < kPageRows; ++r)
        ASSERT_EQ(paged_index(g * kPageRows + r, k, K), paged_index(g * kPageRows, k, K) + r * 8);
}

// The layout written out the long way (chunk, then block, then row), against paged_index's short
// form for widths that are a multiple of 8.
TEST(PagedWeights, ShortFormMatchesChunksOfBlocks) {
  for (const uint32_t K : {8u, 576u, 2048u, 2560u, 8960u}) {
    for (uint32_t r = 0; r < 24; ++r)
      for (uint32_t k = 0; k < K; ++k) {
        const uint32_t c0 = k / kPageCols * kPageCols, b0 = (k - c0) / 8 * 8;
        const size_t expect = size_t(r / kPageRows) * kPageRows * K + size_t(c0) * kPageRows +
                              size_t(b0) * kPageRows + (r % kPageRows) * 8 + (k - c0 - b0);
        ASSERT_EQ(paged_index(r, k, K), expect) << K << " (" << r << ", " << k << ")";
      }
  }
}

TEST(PagedWeights, SixteenBytePiecesStayContiguous) {
  const uint32_t K = 8960;
  for (uint32_t r = 0; r < 16; ++r)
    for (uint32_t k = 0; k < K; k += 8)
      for (uint32_t e = 1; e < 8; ++e) ASSERT_EQ(paged_index(r, k + e, K), paged_index(r, k, K) + e);
}

}  // namespace
}  // namespace mk::cuda
