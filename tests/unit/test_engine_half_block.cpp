// How the decode matvecs' input row is split into half blocks (src/cuda/half_block.h): every 16-byte
// chunk of a row belongs to exactly one half, each half's two chunks are the ones its hi/lo pairs
// are written to, and the 8 threads of one phase of a 128-bit shared memory access touch 8 different
// bank quads (the bank conflicts a thread per whole block had).
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "cuda/half_block.h"

namespace mk::cuda {
namespace {

TEST(HalfBlock, EveryChunkOfARowBelongsToOneHalf) {
  for (const uint32_t dim : {16u, 48u, 576u, 768u, 1536u, 2048u, 3072u, 8192u, 8960u}) {
    std::vector<int> seen(dim / 4, 0);
    for (uint32_t u = 0; u < dim / 8; ++u) {
      const HalfBlock hb = half_block(u);
      ASSERT_EQ(hb.a % 4, 0u);
      ASSERT_LT(hb.c, dim) << "dim " << dim << ", half " << u;
      ++seen[hb.a / 4];
      ++seen[hb.c / 4];
    }
    for (uint32_t k = 0; k < dim / 4; ++k) ASSERT_EQ(seen[k], 1) << "dim " << dim << ", chunk " << k;
  }
}

TEST(HalfBlock, AHalfHoldsTheValuesItsHiAndLoPairsOverwrite) {
  // Half h of block b: values [4h, 4h + 4) (its hi pairs' bytes) and [8 + 4h, 12 + 4h) (its lo pairs').
  for (uint32_t u = 0; u < 64; ++u) {
    const HalfBlock hb = half_block(u);
    EXPECT_EQ(hb.a, u / 2 * 16 + u % 2 * 4);
    EXPECT_EQ(hb.c, hb.a + 8);
  }
}

TEST(HalfBlock, EightNeighboursTouchEightBankQuads) {
  // A 128-bit shared memory access is served 8 threads at a time; 32 banks of 4 bytes make 8 quads
  // of 16 bytes, and two threads on one quad (different addresses) take two passes.
  for (uint32_t u0 = 0; u0 < 256; u0 += 8)
    for (const bool second : {false, true}) {
      std::set<uint32_t> quads;
      for (uint32_t u = u0; u < u0 + 8; ++u) {
        const HalfBlock hb = half_block(u);
        const uint32_t floats = (hb.c_first != second) ? hb.c : hb.a;
        quads.insert(floats * 4 / 16 % 8);
      }
      EXPECT_EQ(quads.size(), 8u) << "threads " << u0 << "-" << u0 + 7 << (second ? ", second access" : ", first access");
    }
}

}  // namespace
}  // namespace mk::cuda
