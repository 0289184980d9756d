#include "cli/run_evaluation.h"

#include <gtest/gtest.h>

namespace deepsearch::cli {
namespace {

TEST(RunEvaluationTest, AnEvaluationAveragesOverItsProblems) {
  Evaluation e;
  e.problems = {{4, 1}, {4, 0}, {4, 4}};
  EXPECT_EQ(e.samples(), 12);
  EXPECT_EQ(e.correct_samples(), 5);
  EXPECT_EQ(e.solved(), 2);
  EXPECT_DOUBLE_EQ(e.accuracy(), 5.0 / 12);
  EXPECT_DOUBLE_EQ(e.pass_at(1), (0.25 + 0.0 + 1.0) / 3);
  EXPECT_DOUBLE_EQ(e.pass_at(2), (0.5 + 0.0 + 1.0) / 3);
  EXPECT_DOUBLE_EQ(e.pass_at_n(), 2.0 / 3);
  EXPECT_DOUBLE_EQ(e.pass_at(4), 2.0 / 3);
}

TEST(RunEvaluationTest, KindsPutTheHeadlineFirstAndNamesCarryTheCounts) {
  const std::vector<EvalKind> kinds = EvalKinds(32, {1.0, 0.6}, 8);
  ASSERT_EQ(kinds.size(), 3u);
  EXPECT_EQ(kinds[0].Label(), "direct-t1.0");
  EXPECT_EQ(kinds[1].Label(), "direct-t0.6");
  EXPECT_EQ(kinds[2].Label(), "tree");
  EXPECT_EQ(kinds[2].samples, 8);
  EXPECT_EQ(EvalKinds(0, {1.0}, 8).size(), 1u);
  EXPECT_EQ(EvalKinds(32, {1.0}, 0).size(), 1u);

  Evaluation e;
  e.step = 25;
  e.generated_tokens = 123456;
  e.screening_tokens = 789;
  e.trained_tokens = 4242;
  e.kind = kinds[1];
  const std::string name = EvaluationName(e);
  EXPECT_EQ(name, "held-out@25:123456:789:4242:direct-t0.6");
  Evaluation back;
  ASSERT_TRUE(ParseEvaluationName(name, back));
  EXPECT_EQ(back.step, 25);
  EXPECT_EQ(back.generated_tokens, 123456);
  EXPECT_EQ(back.screening_tokens, 789);
  EXPECT_EQ(back.trained_tokens, 4242);
  EXPECT_FALSE(ParseEvaluationName("held-out@25:12", back));
  EXPECT_FALSE(ParseEvaluationName("train", back));
}

}  // namespace
}  // namespace deepsearch::cli
