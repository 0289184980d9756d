// Advantages (DEEPSEARCH_SPEC §3.2) against hand-computed values.
#include "learner/train_batch.h"

#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace deepsearch {
namespace {

using ::testing::ElementsAre;
using ::testing::FloatNear;

// A trajectory whose response tokens carry `scores` (one per token); the final score is the
// last token's.
TrainSequence Seq(std::string group, std::vector<float> scores) {
  TrainSequence s;
  s.group_id = std::move(group);
  s.prompt_tokens = {1};
  s.response_tokens.assign(scores.size(), 2);
  s.final_score = scores.back();
  s.token_scores = std::move(scores);
  return s;
}

constexpr float kTol = 1e-6f;

TEST(AdvantagesTest, AllWrongTreeGivesZeroAtTheLeafAndOnePlusTanhBefore) {
  // Three failed trajectories: intermediate chunks tanh(q) (q < 0), the leaf -1. mu = -1.
  const float a = std::tanh(-0.4f), b = std::tanh(-0.2f), c = std::tanh(-0.8f);
  const std::vector<TrainSequence> batch = {Seq("t", {a, a, -1}), Seq("t", {b, -1}),
                                            Seq("t", {c, b, -1})};
  const auto adv = ComputeAdvantages(batch, AdvantageNorm::kMeanOnly);
  ASSERT_EQ(adv.size(), 3u);
  EXPECT_THAT(adv[0],
              ElementsAre(FloatNear(1 + a, kTol), FloatNear(1 + a, kTol), FloatNear(0, kTol)));
  EXPECT_THAT(adv[1], ElementsAre(FloatNear(1 + b, kTol), FloatNear(0, kTol)));
  EXPECT_THAT(adv[2],
              ElementsAre(FloatNear(1 + c, kTol), FloatNear(1 + b, kTol), FloatNear(0, kTol)));
  for (const auto& row : adv) {
    for (float x : row) EXPECT_GE(x, 0.0f);  // positive advantages on failed prefixes (§3.2)
  }
}

TEST(AdvantagesTest, AllCorrectTreeGivesTanhMinusOne) {
  const float a = std::tanh(0.4286f), b = std::tanh(0.1429f);
  const auto adv =
      ComputeAdvantages({Seq("t", {b, a, 1}), Seq("t", {a, 1})}, AdvantageNorm::kMeanOnly);
  EXPECT_THAT(adv[0],
              ElementsAre(FloatNear(b - 1, kTol), FloatNear(a - 1, kTol), FloatNear(0, kTol)));
  EXPECT_THAT(adv[1], ElementsAre(FloatNear(a - 1, kTol), FloatNear(0, kTol)));
}

TEST(AdvantagesTest, MixedGroupSubtractsTheMeanOfFinalScores) {
  // Finals +1, -1, -1, +1 and -1.25 (a wrong response with an overlong penalty of -0.25 on
  // every chunk, §3.1): mu = (1 - 1 - 1 + 1 - 1.25) / 5 = -0.25.
  const std::vector<TrainSequence> batch = {Seq("t", {0.5f, 1}), Seq("t", {-1}),
                                            Seq("t", {0.2f, -1}), Seq("t", {1}),
                                            Seq("t", {-0.25f, -1.25f})};
  const float mu = -1.25f / 5;
  const auto adv = ComputeAdvantages(batch, AdvantageNorm::kMeanOnly);
  EXPECT_THAT(adv[0], ElementsAre(FloatNear(0.5f - mu, kTol), FloatNear(1 - mu, kTol)));
  EXPECT_THAT(adv[1], ElementsAre(FloatNear(-1 - mu, kTol)));
  EXPECT_THAT(adv[2], ElementsAre(FloatNear(0.2f - mu, kTol), FloatNear(-1 - mu, kTol)));
  EXPECT_THAT(adv[3], ElementsAre(FloatNear(1 - mu, kTol)));
  EXPECT_THAT(adv[4], ElementsAre(FloatNear(-0.25f - mu, kTol), FloatNear(-1.25f - mu, kTol)));
}

TEST(AdvantagesTest, MeanStdDividesByTheUnbiasedStd) {
  // Finals 1, -1, -1: mean -1/3; unbiased variance ((4/3)^2 + 2 (2/3)^2) / 2 = 4/3.
  const std::vector<TrainSequence> batch = {Seq("t", {0.5f, 1}), Seq("t", {-1}), Seq("t", {-1})};
  const double mean = -1.0 / 3, std = std::sqrt(4.0 / 3), eps = 1e-6;
  const auto adv = ComputeAdvantages(batch, AdvantageNorm::kMeanStd);
  EXPECT_THAT(adv[0], ElementsAre(FloatNear(static_cast<float>((0.5 - mean) / (std + eps)), kTol),
                                  FloatNear(static_cast<float>((1 - mean) / (std + eps)), kTol)));
  EXPECT_THAT(adv[1], ElementsAre(FloatNear(static_cast<float>((-1 - mean) / (std + eps)), kTol)));
  EXPECT_NEAR(adv[0][1], 1.1547005, 1e-5);
  EXPECT_NEAR(adv[1][0], -0.5773503, 1e-5);
  // The same group, mean only, differs.
  const auto plain = ComputeAdvantages(batch, AdvantageNorm::kMeanOnly);
  EXPECT_NEAR(plain[0][1], 4.0 / 3, 1e-6);
}

TEST(AdvantagesTest, GroupOfOneUsesMeanZeroAndStdOne) {
  const auto mean_only = ComputeAdvantages({Seq("alone", {0.3f, -1})}, AdvantageNorm::kMeanOnly);
  EXPECT_THAT(mean_only[0], ElementsAre(FloatNear(0.3f, kTol), FloatNear(-1, kTol)));
  const auto mean_std =
      ComputeAdvantages({Seq("alone", {0.3f, -1})}, AdvantageNorm::kMeanStd, 0.5f);
  EXPECT_THAT(mean_std[0], ElementsAre(FloatNear(0.3f / 1.5f, kTol), FloatNear(-1 / 1.5f, kTol)));
}

TEST(AdvantagesTest, InterleavedGroupsKeepTheirOwnBaselines) {
  // Group a: finals 1, -1 (mean 0); group b: finals -1, -1, -1 (mean -1); a singleton c.
  const std::vector<TrainSequence> batch = {Seq("b", {0.1f, -1}), Seq("a", {1}),
                                            Seq("c", {0.7f}),     Seq("b", {-1}),
                                            Seq("a", {0.4f, -1}), Seq("b", {-0.3f, -1})};
  const auto adv = ComputeAdvantages(batch, AdvantageNorm::kMeanOnly);
  ASSERT_EQ(adv.size(), batch.size());
  EXPECT_THAT(adv[0], ElementsAre(FloatNear(1.1f, kTol), FloatNear(0, kTol)));
  EXPECT_THAT(adv[1], ElementsAre(FloatNear(1, kTol)));
  EXPECT_THAT(adv[2], ElementsAre(FloatNear(0.7f, kTol)));
  EXPECT_THAT(adv[3], ElementsAre(FloatNear(0, kTol)));
  EXPECT_THAT(adv[4], ElementsAre(FloatNear(0.4f, kTol), FloatNear(-1, kTol)));
  EXPECT_THAT(adv[5], ElementsAre(FloatNear(0.7f, kTol), FloatNear(0, kTol)));
}

TEST(AdvantagesTest, EmptyBatchGivesNothing) {
  EXPECT_TRUE(ComputeAdvantages({}, AdvantageNorm::kMeanOnly).empty());
}

}  // namespace
}  // namespace deepsearch
