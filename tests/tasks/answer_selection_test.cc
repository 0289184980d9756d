#include "common/tasks/answer_selection.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace deepsearch {
namespace {

SampleVerdict V(std::string predicted, bool correct, bool incomplete = false) {
  return {std::move(predicted), correct, incomplete};
}

TEST(SelectAnswerTest, VerifiedMajorityAndPassAtK) {
  SolveSummary s = SelectAnswer(true, {V("1", false), V("3", true), V("1", false), V("2", false)});
  EXPECT_EQ(s.selection, "verified");
  EXPECT_EQ(s.answer, "3");
  EXPECT_TRUE(s.correct);
  EXPECT_EQ(s.correct_samples, 1);
  EXPECT_NEAR(s.pass_at_k[1], 0.25, 1e-12);
  EXPECT_NEAR(s.pass_at_k[2], 0.5, 1e-12);  // 1 - C(3,2)/C(4,2)
  EXPECT_NEAR(s.pass_at_k[4], 1.0, 1e-12);
  // No correct one: the majority answer, not claimed correct.
  s = SelectAnswer(true, {V("1", false), V("2", false), V("2", false)});
  EXPECT_EQ(s.selection, "majority");
  EXPECT_EQ(s.answer, "2");
  EXPECT_FALSE(s.correct);
  EXPECT_NEAR(s.pass_at_k[1], 0.0, 1e-12);
  // No ground truth: majority, ties to the earliest, no pass@k; invalid answers do not vote.
  s = SelectAnswer(false,
                   {V("[INVALID]", false), V("[INVALID]", false), V("5", false), V("4", false)});
  EXPECT_EQ(s.selection, "majority");
  EXPECT_EQ(s.answer, "5");
  EXPECT_TRUE(s.pass_at_k.empty());
  s = SelectAnswer(false, {V("[INVALID]", false)});
  EXPECT_EQ(s.selection, "none");
}

TEST(SelectAnswerTest, CorrectMeansNothingWithoutAGroundTruthAndIncompleteSamplesDoNotVote) {
  // Without a ground truth a "correct" flag is ignored: the majority decides.
  SolveSummary s = SelectAnswer(false, {V("7", true), V("8", false), V("8", false)});
  EXPECT_EQ(s.selection, "majority");
  EXPECT_EQ(s.answer, "8");
  EXPECT_FALSE(s.correct);
  EXPECT_EQ(s.correct_samples, 0);
  // A truncated sample's answer does not vote, however many there are.
  s = SelectAnswer(true, {V("9", false, true), V("9", false, true), V("6", false)});
  EXPECT_EQ(s.answer, "6");
  EXPECT_EQ(s.samples, 3);
  EXPECT_EQ(s.pass_at_k.size(), 3u);  // k = 1, 2 and 3
}

}  // namespace
}  // namespace deepsearch
