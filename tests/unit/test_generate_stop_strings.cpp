// StopStrings tests: a stop string split across pieces is never shown, false starts are
// released, the earliest of several stop strings wins, and nothing follows a stop.
#include <gtest/gtest.h>

#include "generate/stop_strings.h"

namespace mk {
namespace {

// Feeds `pieces` one by one; returns everything shown.
std::string feed(StopStrings& s, const std::vector<std::string>& pieces, std::vector<std::string>* steps = nullptr) {
  std::string out;
  for (const std::string& p : pieces) {
    std::string shown = s.push(p);
    if (steps) steps->push_back(shown);
    out += shown;
  }
  return out + s.flush();
}

TEST(StopStrings, SplitAcrossPiecesIsNeverShown) {
  StopStrings s({"</answer>"});
  std::vector<std::string> steps;
  EXPECT_EQ(feed(s, {"The result is 4", "2.</", "ans", "wer> and more", " text"}, &steps), "The result is 42.");
  EXPECT_EQ(steps[1], "2.");  // "</" waits: it may start the stop string
  EXPECT_EQ(steps[2], "");
  EXPECT_EQ(steps[3], "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.matched(), "</answer>");
}

TEST(StopStrings, FalseStartIsReleased) {
  StopStrings s({"User:"});
  std::vector<std::string> steps;
  EXPECT_EQ(feed(s, {"Hello Us", "ually fine", " Use"}, &steps), "Hello Usually fine Use");
  EXPECT_EQ(steps[0], "Hello ");
  EXPECT_EQ(steps[1], "Usually fine");
  EXPECT_EQ(steps[2], " ");  // "Use" is held back until the end
  EXPECT_FALSE(s.stopped());
}

TEST(StopStrings, EarliestOfSeveralWins) {
  StopStrings s({"world", "lo w"});
  EXPECT_EQ(feed(s, {"hello world"}), "hel");
  EXPECT_EQ(s.matched(), "lo w");
}

TEST(StopStrings, OneCharacterPerPiece) {
  StopStrings s({"\n\n"});
  std::string text = "line one\nline two\n\nignored";
  std::vector<std::string> pieces;
  for (char c : text) pieces.push_back(std::string(1, c));
  EXPECT_EQ(feed(s, pieces), "line one\nline two");
}

TEST(StopStrings, MultiByteStopString) {
  StopStrings s({"→ end"});
  EXPECT_EQ(feed(s, {"a →", " en", "d b"}), "a ");
}

TEST(StopStrings, NothingAfterTheStop) {
  StopStrings s({"STOP"});
  EXPECT_EQ(s.push("abcSTOPdef"), "abc");
  EXPECT_EQ(s.push("more"), "");
  EXPECT_EQ(s.flush(), "");
}

TEST(StopStrings, NoStopStringsPassesEverything) {
  StopStrings s({"", ""});
  EXPECT_EQ(s.push("abc"), "abc");
  EXPECT_EQ(s.flush(), "");
}

}  // namespace
}  // namespace mk
