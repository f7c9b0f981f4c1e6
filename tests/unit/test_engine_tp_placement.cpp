// Where tensor-parallel ranks go on a host's GPUs (runtime/tp_placement.h): a GPU per rank where
// enough GPUs reach each other, several ranks to a GPU otherwise, the SMs every rank is scheduled
// for, and one-line errors for requests that cannot be met. Fake GPUs: no device needed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "model/error.h"
#include "runtime/tp_placement.h"

namespace mk {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<cuda::DeviceInfo> gpus(std::vector<int> sms) {
  std::vector<cuda::DeviceInfo> out;
  for (size_t i = 0; i < sms.size(); ++i) {
    cuda::DeviceInfo g;
    g.present = true;
    g.ordinal = int(i);
    g.sms = sms[i];
    out.push_back(g);
  }
  return out;
}

bool all_peers(int, int) { return true; }

std::string error_of(uint32_t tp, uint32_t tp_gpus, uint32_t sms, const std::vector<cuda::DeviceInfo>& g,
                     const std::function<bool(int, int)>& peer = all_peers) {
  try {
    place_ranks(tp, tp_gpus, sms, g, peer);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TpPlacement, OneRankTakesTheWholeFirstGpu) {
  const TpPlacement p = place_ranks(1, 0, 0, gpus({132, 132}), all_peers);
  EXPECT_THAT(p.device, ElementsAre(0));
  EXPECT_EQ(p.sms, 132u);
  EXPECT_EQ(p.gpus, 1u);
}

TEST(TpPlacement, RanksShareTheOnlyGpuEachOnItsShareOfTheSms) {
  const TpPlacement p = place_ranks(4, 0, 0, gpus({132}), all_peers);
  EXPECT_THAT(p.device, ElementsAre(0, 0, 0, 0));
  EXPECT_EQ(p.sms, 33u);
  EXPECT_EQ(p.gpus, 1u);
}

TEST(TpPlacement, AGpuPerRankWhereTheHostHasEnough) {
  const TpPlacement p = place_ranks(4, 0, 0, gpus({132, 132, 132, 132, 132, 132, 132, 132}), all_peers);
  EXPECT_THAT(p.device, ElementsAre(0, 1, 2, 3));
  EXPECT_EQ(p.sms, 132u);
  EXPECT_EQ(p.gpus, 4u);
}

TEST(TpPlacement, TheMostGpusThatDivideTheRanks) {
  // 3 GPUs for 4 ranks: 2 of them, two ranks each; 8 ranks on 8 GPUs, one each.
  const TpPlacement p = place_ranks(4, 0, 0, gpus({132, 132, 132}), all_peers);
  EXPECT_THAT(p.device, ElementsAre(0, 0, 1, 1));
  EXPECT_EQ(p.sms, 66u);
  EXPECT_EQ(p.gpus, 2u);
  // 3 ranks on 2 GPUs: no divisor but 1, so they share the first.
  EXPECT_THAT(place_ranks(3, 0, 0, gpus({132, 132}), all_peers).device, ElementsAre(0, 0, 0));
}

TEST(TpPlacement, AskedGpuCountAndSms) {
  const TpPlacement shared = place_ranks(2, 1, 0, gpus({132, 132}), all_peers);
  EXPECT_THAT(shared.device, ElementsAre(0, 0));
  EXPECT_EQ(shared.sms, 66u);
  const TpPlacement p = place_ranks(4, 2, 48, gpus({132, 132, 132, 132}), all_peers);
  EXPECT_THAT(p.device, ElementsAre(0, 0, 1, 1));
  EXPECT_EQ(p.sms, 48u);
}

TEST(TpPlacement, EveryRankIsScheduledForTheNarrowestGpusShare) {
  // Programs must be alike on every rank: the smaller GPU sets the SM count.
  const TpPlacement p = place_ranks(2, 0, 0, gpus({132, 114}), all_peers);
  EXPECT_THAT(p.device, ElementsAre(0, 1));
  EXPECT_EQ(p.sms, 114u);
  EXPECT_THAT(error_of(2, 0, 120, gpus({132, 114})), HasSubstr("a rank has at most 114 SMs (GPU 1's 114 SMs)"));
}

TEST(TpPlacement, GpusWithoutPeerAccessAreNotSpreadOver) {
  // GPUs 0-1 and 2-3 reach each other in pairs only: 4 ranks go on the first pair.
  auto pairs = [](int a, int b) { return a / 2 == b / 2; };
  const TpPlacement p = place_ranks(4, 0, 0, gpus({132, 132, 132, 132}), pairs);
  EXPECT_THAT(p.device, ElementsAre(0, 0, 1, 1));
  EXPECT_EQ(p.gpus, 2u);
  // Asked for all four, it says which pair cannot.
  EXPECT_EQ(error_of(4, 4, 0, gpus({132, 132, 132, 132}), pairs),
            "--tp-gpus 4: GPU 0 cannot access GPU 2's memory (no peer access), which the ranks' all-reduce needs");
}

TEST(TpPlacement, RequestsThatCannotBeMetSayWhyInOneLine) {
  EXPECT_EQ(error_of(3, 2, 0, gpus({132, 132})), "--tp-gpus 2 does not divide --tp 3: every GPU holds the same number of ranks");
  EXPECT_EQ(error_of(4, 4, 0, gpus({132, 132})), "--tp-gpus 4: the host has 2 GPUs");
  EXPECT_EQ(error_of(2, 2, 0, gpus({132})), "--tp-gpus 2: the host has 1 GPU");
  EXPECT_EQ(error_of(8, 1, 0, gpus({4})), "--tp 8: more ranks than SMs (GPU 0's 4 SMs shared by 8 ranks)");
  EXPECT_EQ(error_of(2, 0, 70, gpus({132})), "--sms 70 with --tp 2: a rank has at most 66 SMs (GPU 0's 132 SMs shared by 2 ranks)");
  EXPECT_EQ(error_of(1, 0, 200, gpus({132})), "--sms 200: the GPU has 132 SMs");
  EXPECT_EQ(error_of(0, 0, 0, gpus({132})), "--tp 0: tensor parallelism needs at least one rank");
}

}  // namespace
}  // namespace mk
