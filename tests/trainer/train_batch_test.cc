// Advantages (DEEPSEARCH_SPEC §3.2) against hand-computed values; how a step's batch is split
// into mini-batches and over data-parallel ranks; the batch's wire encoding.
#include "trainer/train_batch.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace deepsearch {
namespace {

using ::testing::ElementsAre;
using ::testing::FloatNear;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

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

TEST(AdvantagesTest, MeanStdDividesByThePopulationStd) {
  // Finals 1, -1, -1: mean -1/3; population variance ((4/3)^2 + 2 (2/3)^2) / 3 = 8/9, as the
  // reference code's sibling_mean_std (torch std(unbiased=False)).
  const std::vector<TrainSequence> batch = {Seq("t", {0.5f, 1}), Seq("t", {-1}), Seq("t", {-1})};
  const double mean = -1.0 / 3, std = std::sqrt(8.0 / 9), eps = 1e-6;
  const auto adv = ComputeAdvantages(batch, AdvantageNorm::kMeanStd);
  EXPECT_THAT(adv[0], ElementsAre(FloatNear(static_cast<float>((0.5 - mean) / (std + eps)), kTol),
                                  FloatNear(static_cast<float>((1 - mean) / (std + eps)), kTol)));
  EXPECT_THAT(adv[1], ElementsAre(FloatNear(static_cast<float>((-1 - mean) / (std + eps)), kTol)));
  EXPECT_NEAR(adv[0][1], 1.4142121, 1e-5);   // (4/3) / sqrt(8/9) = sqrt(2)
  EXPECT_NEAR(adv[1][0], -0.7071060, 1e-5);  // -(2/3) / sqrt(8/9)
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

TEST(GroupSummaryTest, AllWrongGroupsKeepTheirTreeAdvantages) {
  // The interleaved batch above: group a holds the one correct trajectory; b (finals -1, -1,
  // -1) and the singleton c are all wrong. b's advantages 1.1 0 | 0 | 0.7 0, c's 0.7: six
  // tokens summing to 2.5.
  const std::vector<TrainSequence> batch = {Seq("b", {0.1f, -1}), Seq("a", {1}),
                                            Seq("c", {0.7f}),     Seq("b", {-1}),
                                            Seq("a", {0.4f, -1}), Seq("b", {-0.3f, -1})};
  const std::vector<bool> correct = {false, true, false, false, false, false};
  const GroupSummary s =
      SummarizeGroups(batch, correct, ComputeAdvantages(batch, AdvantageNorm::kMeanOnly));
  EXPECT_EQ(s.groups, 3);
  EXPECT_EQ(s.all_wrong_groups, 2);
  EXPECT_EQ(s.all_wrong_tokens, 6);
  EXPECT_NEAR(s.all_wrong_mean_advantage, 2.5 / 6, 1e-6);
  EXPECT_NEAR(s.AllWrongShare(), 2.0 / 3, 1e-12);
}

TEST(GroupSummaryTest, OutcomeRewardsGiveAllWrongGroupsZero) {
  // GRPO: every token carries the final score, so an all-wrong group's advantages are 0.
  const std::vector<TrainSequence> batch = {Seq("g", {-1, -1}), Seq("g", {-1}), Seq("h", {1}),
                                            Seq("h", {-1, -1})};
  const GroupSummary s = SummarizeGroups(batch, {false, false, true, false},
                                         ComputeAdvantages(batch, AdvantageNorm::kMeanOnly));
  EXPECT_EQ(s.groups, 2);
  EXPECT_EQ(s.all_wrong_groups, 1);
  EXPECT_EQ(s.all_wrong_tokens, 3);
  EXPECT_EQ(s.all_wrong_mean_advantage, 0.0);
  const GroupSummary none = SummarizeGroups({}, {}, {});
  EXPECT_EQ(none.groups, 0);
  EXPECT_EQ(none.AllWrongShare(), 0.0);
}

TEST(AdvantagesTest, EmptyBatchGivesNothing) {
  EXPECT_TRUE(ComputeAdvantages({}, AdvantageNorm::kMeanOnly).empty());
}

// A sequence of 1 prompt token and `response` response tokens, all scored `score`.
TrainSequence Sized(std::string group, int response, float score = 1.0f) {
  return Seq(std::move(group), std::vector<float>(static_cast<size_t>(response), score));
}

TEST(PlanStepTest, OneProcessSplitsInOrderBySequenceCount) {
  const std::vector<TrainSequence> batch = {Sized("a", 2), Sized("a", 3), Sized("b", 1),
                                            Sized("b", 4), Sized("c", 2)};
  // parts = 2: [0, 5/2) and [5/2, 5).
  StepPlan plan = PlanStep(batch, AdvantageNorm::kMeanOnly, 2);
  ASSERT_EQ(plan.mini_batches.size(), 2u);
  EXPECT_THAT(plan.mini_batches[0], ElementsAre(0, 1));
  EXPECT_THAT(plan.mini_batches[1], ElementsAre(2, 3, 4));
  ASSERT_EQ(plan.advantages.size(), 5u);
  // More mini-batches than sequences: one per sequence.
  plan = PlanStep(batch, AdvantageNorm::kMeanOnly, 8);
  ASSERT_EQ(plan.mini_batches.size(), 5u);
  EXPECT_THAT(plan.mini_batches[4], ElementsAre(4));
}

TEST(PlanStepTest, RanksAreDealtLongestFirstToTheLightestRank) {
  // Tokens (1 prompt + response): 6, 2, 4, 4, 3. Longest first: 0 (6) -> rank 0; 2 (4) ->
  // rank 1; 3 (4) -> rank 1 (4 < 6); 4 (3) -> rank 0 (6 < 8); 1 (2) -> rank 1 (8 < 9).
  const std::vector<TrainSequence> batch = {Sized("a", 5), Sized("a", 1), Sized("b", 3),
                                            Sized("b", 3), Sized("c", 2)};
  const StepPlan r0 = PlanStep(batch, AdvantageNorm::kMeanOnly, 1, 0, 2);
  const StepPlan r1 = PlanStep(batch, AdvantageNorm::kMeanOnly, 1, 1, 2);
  ASSERT_EQ(r0.mini_batches.size(), 1u);
  ASSERT_EQ(r1.mini_batches.size(), 1u);
  EXPECT_THAT(r0.mini_batches[0], ElementsAre(0, 4));
  EXPECT_THAT(r1.mini_batches[0], ElementsAre(1, 2, 3));
  // Advantages are of the whole batch on every rank: groups straddle ranks intact.
  EXPECT_EQ(r0.advantages, r1.advantages);
  EXPECT_EQ(r0.advantages, ComputeAdvantages(batch, AdvantageNorm::kMeanOnly));
}

TEST(PlanStepTest, EveryMiniBatchIsDealtAndTheRanksCoverItExactlyOnce) {
  std::vector<TrainSequence> batch;
  for (int i = 0; i < 11; ++i) batch.push_back(Sized(std::string(1, 'a' + i % 3), 1 + (i * 7) % 5));
  const int world = 3;
  const StepPlan one = PlanStep(batch, AdvantageNorm::kMeanOnly, 4);
  std::vector<std::vector<size_t>> covered(one.mini_batches.size());
  for (int rank = 0; rank < world; ++rank) {
    const StepPlan plan = PlanStep(batch, AdvantageNorm::kMeanOnly, 4, rank, world);
    ASSERT_EQ(plan.mini_batches.size(), one.mini_batches.size()) << "rank " << rank;
    for (size_t k = 0; k < plan.mini_batches.size(); ++k) {
      EXPECT_TRUE(std::is_sorted(plan.mini_batches[k].begin(), plan.mini_batches[k].end()));
      covered[k].insert(covered[k].end(), plan.mini_batches[k].begin(), plan.mini_batches[k].end());
    }
  }
  for (size_t k = 0; k < covered.size(); ++k) {
    std::sort(covered[k].begin(), covered[k].end());
    EXPECT_EQ(covered[k], one.mini_batches[k]) << "mini-batch " << k;
  }
}

TEST(PlanStepTest, ARankWithoutSequencesStillHasEveryMiniBatch) {
  const std::vector<TrainSequence> batch = {Sized("a", 2), Sized("a", 3)};
  const StepPlan r2 = PlanStep(batch, AdvantageNorm::kMeanOnly, 1, 2, 3);
  ASSERT_EQ(r2.mini_batches.size(), 1u);
  EXPECT_THAT(r2.mini_batches[0], IsEmpty());
  EXPECT_THAT(PlanStep(batch, AdvantageNorm::kMeanOnly, 1, 0, 3).mini_batches[0], ElementsAre(1));
  EXPECT_THAT(PlanStep(batch, AdvantageNorm::kMeanOnly, 1, 1, 3).mini_batches[0], ElementsAre(0));
}

TEST(TrainSequenceEncodingTest, RoundTripsEveryField) {
  TrainSequence a = Seq("tree-1", {0.5f, -1.0f});
  a.prompt_tokens = {7, 8, 9};
  a.behavior_logprobs = {-0.25f, -3.5f};
  a.weight_version = 41;
  TrainSequence b = Seq("", {1.0f});  // no behaviour log-probs, empty group id
  b.weight_version = -1;
  const std::vector<TrainSequence> batch = {a, b};
  auto decoded = DecodeTrainSequences(EncodeTrainSequences(batch));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const TrainSequence& x = batch[i];
    const TrainSequence& y = (*decoded)[i];
    EXPECT_EQ(x.group_id, y.group_id);
    EXPECT_EQ(x.prompt_tokens, y.prompt_tokens);
    EXPECT_EQ(x.response_tokens, y.response_tokens);
    EXPECT_EQ(x.behavior_logprobs, y.behavior_logprobs);
    EXPECT_EQ(x.token_scores, y.token_scores);
    EXPECT_EQ(x.final_score, y.final_score);
    EXPECT_EQ(x.weight_version, y.weight_version);
  }
  auto empty = DecodeTrainSequences(EncodeTrainSequences({}));
  ASSERT_TRUE(empty.ok());
  EXPECT_THAT(*empty, IsEmpty());
}

TEST(TrainSequenceEncodingTest, RefusesTruncatedTrailingAndForeignBytes) {
  const std::string bytes = EncodeTrainSequences({Seq("g", {1.0f, 0.0f}), Seq("h", {-1.0f})});
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto decoded = DecodeTrainSequences(std::string_view(bytes).substr(0, n));
    ASSERT_FALSE(decoded.ok()) << n << " of " << bytes.size() << " bytes decoded";
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(decoded.status().message(), HasSubstr("encoded batch"));
  }
  auto trailing = DecodeTrainSequences(bytes + "x");
  EXPECT_THAT(trailing.status().message(), HasSubstr("1 bytes after the last of 2 sequences"));
  std::string foreign = bytes;
  foreign[0] = 'X';
  EXPECT_THAT(DecodeTrainSequences(foreign).status().message(), HasSubstr("bad magic number"));
  // A length that claims more than is left is refused before anything is allocated.
  std::string huge = EncodeTrainSequences({Seq("g", {1.0f})});
  const size_t prompt_length_at = 4 + 4 + 8 + 8 + 1;  // magic, format, count, group id
  for (size_t i = 0; i < 8; ++i) huge[prompt_length_at + i] = '\xff';
  EXPECT_THAT(DecodeTrainSequences(huge).status().message(), HasSubstr("sequence 0: prompt needs"));
}

}  // namespace
}  // namespace deepsearch
