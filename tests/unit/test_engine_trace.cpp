// The phase summary of a traced run (runtime/trace.h): medians by kind of node, phases that an
// instruction lacks left out, and its table.
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/trace.h"

namespace mk {
namespace {

// One SM running three instructions: two o_proj tiles of different layers (a matvec: input, weights
// and signal stamped, and its page waits counted) and an attention tile (only the signal stamped).
Program three_instructions() {
  Program p;
  p.num_sms = 1;
  p.queue_begin = {0, 3};
  p.counter_names = {"L0.o_proj", "L1.o_proj", "L0.attn_partial"};
  p.instructions.resize(3);
  for (uint32_t i = 0; i < 3; ++i) p.instructions[i].node = i;
  return p;
}

TEST(Trace, PhasesAreSummarizedByKindOfNode) {
  const Program p = three_instructions();
  // start, end (ns) of each instruction.
  const std::vector<uint64_t> stamps = {1000, 9000, 10000, 16000, 20000, 26000};
  // input loaded, weights done, signal begun; pages waited for, ns waited; row landed; pages ready;
  // row whole.
  const std::vector<uint64_t> phases = {3000,  7000,  8000,  2, 1500, 2500,  6, 2800,   // o_proj L0: 2, 4, 1, 1 us
                                        11000, 13000, 15000, 4, 500,  10500, 9, 10900,  // o_proj L1: 1, 2, 2, 1 us
                                        0,     0,     25000, 0, 0,    0,     0, 0};  // attention: finish 5 us from its start
  static_assert(kTracePhases == 8);
  const std::vector<PhaseTime> rows = summarize_phases(p, stamps, phases);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].node, "o_proj");
  EXPECT_EQ(rows[0].instructions, 2u);
  // The median of two is the upper one (nth_element at size / 2).
  EXPECT_DOUBLE_EQ(rows[0].input_us, 2.0);
  EXPECT_DOUBLE_EQ(rows[0].row_us, 1.5);  // of 1.5 and 0.5
  EXPECT_DOUBLE_EQ(rows[0].row_whole_us, 1.8);  // of 1.8 and 0.9
  EXPECT_DOUBLE_EQ(rows[0].weights_us, 4.0);
  EXPECT_DOUBLE_EQ(rows[0].finish_us, 2.0);
  EXPECT_DOUBLE_EQ(rows[0].signal_us, 1.0);
  EXPECT_DOUBLE_EQ(rows[0].total_us, 8.0);
  EXPECT_DOUBLE_EQ(rows[0].page_stalls, 4.0);
  EXPECT_DOUBLE_EQ(rows[0].stall_us, 1.5);
  EXPECT_DOUBLE_EQ(rows[0].ring_ready, 9.0);
  EXPECT_EQ(rows[1].node, "attn_partial");
  EXPECT_TRUE(std::isnan(rows[1].input_us));
  EXPECT_TRUE(std::isnan(rows[1].row_us));
  EXPECT_TRUE(std::isnan(rows[1].row_whole_us));
  EXPECT_TRUE(std::isnan(rows[1].weights_us));
  EXPECT_DOUBLE_EQ(rows[1].finish_us, 5.0);
  EXPECT_DOUBLE_EQ(rows[1].signal_us, 1.0);
  EXPECT_TRUE(std::isnan(rows[1].page_stalls)) << "no weight pages, no page waits";
  EXPECT_TRUE(std::isnan(rows[1].ring_ready));

  const std::string table = format_phase_summary(rows);
  EXPECT_NE(table.find("| o_proj | 2 | 2.00 | 1.50 | 1.80 | 4.00 | 2.00 | 1.00 | 8.00 | 4.00 | 1.50 | 9.00 |"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("| attn_partial | 1 | - | - | - | - | 5.00 | 1.00 | 6.00 | - | - | - |"), std::string::npos) << table;
}

TEST(Trace, NoPhaseStampsGiveNoRows) {
  const Program p = three_instructions();
  const std::vector<uint64_t> stamps = {1000, 9000, 10000, 16000, 20000, 26000};
  EXPECT_TRUE(summarize_phases(p, stamps, {}).empty());
  EXPECT_TRUE(summarize_phases(p, stamps, std::vector<uint64_t>(3 * kTracePhases, 0)).empty())
      << "a run that stamped nothing";
}

}  // namespace
}  // namespace mk
