#include "wire/convert.h"

#include "gtest/gtest.h"

namespace deepsearch {
namespace {

TEST(WireConvertTest, SearchConstantsCrossTheWireExactly) {
  SearchParams s;
  s.max_depth = 12;
  s.step_tokens = 24;
  s.step_delimiter = "\n";
  s.expansion_width = 3;
  s.trajectories_per_tree = 5;
  s.uct_lambda = 1.7;
  s.gamma_min = 0.13;
  s.lambda_quality = 0.4;  // a float would bring it back as 0.4000000059604645
  s.lambda_entropy = 0.37;
  s.lambda_depth = 0.011;
  s.entropy_bonus = true;
  s.depth_bonus = DepthBonus::kLog;
  s.backtrace = Backtrace::kUct;
  s.q_update = QUpdate::kVanilla;
  s.negative_choice = NegativeChoice::kRandom;
  s.incomplete_score = -0.3;
  s.q_soft_clip_temperature = 0.7;
  s.q_max = 0.9;
  s.max_response_tokens = 96;
  s.overlong_buffer = 16;
  s.overlong_factor = 0.55;
  // Through the bytes, as a lease carries them.
  v1::SearchParams wire;
  ASSERT_TRUE(wire.ParseFromString(SearchParamsToProto(s).SerializeAsString()));
  const SearchParams back = SearchParamsFromProto(wire);
  EXPECT_EQ(back.max_depth, 12);
  EXPECT_EQ(back.step_tokens, 24);
  EXPECT_EQ(back.step_delimiter, "\n");
  EXPECT_EQ(back.expansion_width, 3);
  EXPECT_EQ(back.trajectories_per_tree, 5);
  EXPECT_EQ(back.uct_lambda, 1.7);
  EXPECT_EQ(back.gamma_min, 0.13);
  EXPECT_EQ(back.lambda_quality, 0.4);
  EXPECT_EQ(back.lambda_entropy, 0.37);
  EXPECT_EQ(back.lambda_depth, 0.011);
  EXPECT_TRUE(back.entropy_bonus);
  EXPECT_EQ(back.depth_bonus, DepthBonus::kLog);
  EXPECT_EQ(back.backtrace, Backtrace::kUct);
  EXPECT_EQ(back.q_update, QUpdate::kVanilla);
  EXPECT_EQ(back.negative_choice, NegativeChoice::kRandom);
  EXPECT_EQ(back.incomplete_score, -0.3);
  EXPECT_EQ(back.q_soft_clip_temperature, 0.7);
  EXPECT_EQ(back.q_max, 0.9);
  EXPECT_EQ(back.max_response_tokens, 96);
  EXPECT_EQ(back.overlong_buffer, 16);
  EXPECT_EQ(back.overlong_factor, 0.55);
}

TEST(WireConvertTest, UnsetSearchFieldsTakeThePapersDefaults) {
  const SearchParams back = SearchParamsFromProto(v1::SearchParams());
  const SearchParams paper;
  EXPECT_EQ(back.max_depth, paper.max_depth);
  EXPECT_EQ(back.uct_lambda, 2.0);
  EXPECT_EQ(back.lambda_quality, 0.4);
  EXPECT_EQ(back.lambda_depth, 0.01);
  EXPECT_EQ(back.depth_bonus, DepthBonus::kSqrt);
  EXPECT_EQ(back.backtrace, Backtrace::kGlobal);
  EXPECT_EQ(back.negative_choice, NegativeChoice::kMostConfident);
  EXPECT_EQ(back.incomplete_score, -1.0);
}

TEST(WireConvertTest, ProblemsRoundTrip) {
  Problem p{"p-1", "What is 2+3?", "5", "addition:digits=1", {{"source", "gen"}, {"seed", "3"}}};
  v1::Problem wire;
  ASSERT_TRUE(wire.ParseFromString(ProblemToProto(p).SerializeAsString()));
  EXPECT_EQ(ProblemFromProto(wire), p);
}

}  // namespace
}  // namespace deepsearch
