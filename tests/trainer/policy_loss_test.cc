// The Tree-GRPO policy loss (DEEPSEARCH_SPEC §3.3), branch by branch, with hand-computed
// numbers.
#include "trainer/policy_loss.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace deepsearch {
namespace {

// A [1, N] tensor (double, so gradients can be checked by finite differences).
at::Tensor Row(const std::vector<double>& v) {
  return at::tensor(at::ArrayRef<double>(v), at::kDouble).view({1, -1});
}

struct Case {
  double log_ratio;  // logp - old_logp
  double advantage;
};

// The loss of single tokens with logp = log_ratio, old_logp = 0.
double Loss(const std::vector<Case>& cases, PolicyLossStats* stats = nullptr,
            const PolicyLossConfig& config = {}) {
  std::vector<double> logp, adv;
  for (const Case& c : cases) {
    logp.push_back(c.log_ratio);
    adv.push_back(c.advantage);
  }
  const at::Tensor zeros = at::zeros({1, static_cast<int64_t>(cases.size())}, at::kDouble);
  return PolicyLoss(Row(logp), zeros, Row(adv), at::ones_like(zeros), config, at::Tensor(),
                    at::Tensor(), stats)
      .item<double>();
}

TEST(PolicyLossTest, RatioInsideTheClipRangeIsUnclipped) {
  PolicyLossStats stats;
  // r = 1.1, A = 2: L1 = L2 = -2.2.
  EXPECT_NEAR(Loss({{std::log(1.1), 2.0}}, &stats), -2.2, 1e-12);
  EXPECT_EQ(stats.clip_fraction, 0.0);
  EXPECT_EQ(stats.dual_clip_fraction, 0.0);
  EXPECT_NEAR(stats.approx_kl, -std::log(1.1), 1e-12);
  EXPECT_EQ(stats.tokens, 1.0);
  // r = 0.9, A = -1: L1 = 0.9, L2 = 0.9.
  EXPECT_NEAR(Loss({{std::log(0.9), -1.0}}), 0.9, 1e-12);
}

TEST(PolicyLossTest, PositiveAdvantageIsClippedAboveOnePlusClipHigh) {
  PolicyLossStats stats;
  // r = 1.5, A = 1: L1 = -1.5, L2 = -1.28 (Clip-Higher), max = -1.28.
  EXPECT_NEAR(Loss({{std::log(1.5), 1.0}}, &stats), -1.28, 1e-12);
  EXPECT_EQ(stats.clip_fraction, 1.0);
  EXPECT_EQ(stats.dual_clip_fraction, 0.0);
  // Just inside: r = 1.27 is not clipped.
  EXPECT_NEAR(Loss({{std::log(1.27), 1.0}}, &stats), -1.27, 1e-12);
  EXPECT_EQ(stats.clip_fraction, 0.0);
  // A > 0 with r below 1 - 0.2 is not clipped (min of the two surrogates): r = 0.5 -> -0.5.
  EXPECT_NEAR(Loss({{std::log(0.5), 1.0}}, &stats), -0.5, 1e-12);
  EXPECT_EQ(stats.clip_fraction, 0.0);
}

TEST(PolicyLossTest, NegativeAdvantageIsClippedBelowOneMinusClipLow) {
  PolicyLossStats stats;
  // r = 0.5, A = -1: L1 = 0.5, L2 = 0.8, max = 0.8; the dual clip (10) does not bind.
  EXPECT_NEAR(Loss({{std::log(0.5), -1.0}}, &stats), 0.8, 1e-12);
  EXPECT_EQ(stats.clip_fraction, 1.0);
  EXPECT_EQ(stats.dual_clip_fraction, 0.0);
  // r = 2, A = -0.5: L1 = 1.0, L2 = 0.64, max = 1.0 (unclipped: the ratio grew on a bad token).
  EXPECT_NEAR(Loss({{std::log(2.0), -0.5}}, &stats), 1.0, 1e-12);
  EXPECT_EQ(stats.clip_fraction, 0.0);
}

TEST(PolicyLossTest, DualClipBoundsNegativeAdvantagesAtMinusATimesC) {
  PolicyLossStats stats;
  // r = e^3 = 20.09, A = -1: L1 = 20.09, L2 = 1.28, Lc = 20.09 > -A * 10 = 10 -> 10.
  EXPECT_NEAR(Loss({{3.0, -1.0}}, &stats), 10.0, 1e-12);
  EXPECT_EQ(stats.dual_clip_fraction, 1.0);
  EXPECT_EQ(stats.clip_fraction, 0.0);
  // A = -0.3, r = e^4: bound 3.0.
  EXPECT_NEAR(Loss({{4.0, -0.3}}, &stats), 3.0, 1e-12);
  // A huge ratio with A > 0 is clipped at 1.28 and never dual-clipped.
  EXPECT_NEAR(Loss({{4.0, 0.3}}, &stats), -0.3 * 1.28, 1e-12);
  EXPECT_EQ(stats.dual_clip_fraction, 0.0);
  // The dual clip carries no gradient.
  at::Tensor logp = Row({3.0}).requires_grad_(true);
  const at::Tensor zeros = at::zeros({1, 1}, at::kDouble);
  PolicyLoss(logp, zeros, Row({-1.0}), at::ones_like(zeros), {}, at::Tensor(), at::Tensor(),
             nullptr)
      .backward();
  EXPECT_EQ(logp.grad().item<double>(), 0.0);
}

TEST(PolicyLossTest, MaskExcludesPaddingAndTheMeanIsOverTokens) {
  // Row 0 has 3 valid tokens, row 1 one valid token and two padding positions whose values
  // would dominate the loss if counted.
  const at::Tensor logp = Row({0, 0, 0, std::log(1.1), 5.0, -7.0}).view({2, 3});
  const at::Tensor old = at::zeros({2, 3}, at::kDouble);
  const at::Tensor adv = Row({1, 2, 3, -4, 100, -100}).view({2, 3});
  const at::Tensor mask = Row({1, 1, 1, 1, 0, 0}).view({2, 3});
  PolicyLossStats stats;
  const double loss =
      PolicyLoss(logp, old, adv, mask, {}, at::Tensor(), at::Tensor(), &stats).item<double>();
  // Token-mean over the 4 valid tokens: (-1 - 2 - 3 + 4.4) / 4 (not the mean of row means).
  EXPECT_NEAR(loss, (-1 - 2 - 3 + 4.4) / 4, 1e-12);
  EXPECT_EQ(stats.tokens, 4.0);
  EXPECT_EQ(stats.clip_fraction, 0.0);
}

TEST(PolicyLossTest, StatsCountClippedAndDualClippedTokens) {
  PolicyLossStats stats;
  // One token each: inside, clipped high, clipped low, dual-clipped.
  const double loss =
      Loss({{0.0, 1.0}, {std::log(1.5), 1.0}, {std::log(0.5), -1.0}, {3.0, -1.0}}, &stats);
  EXPECT_NEAR(loss, (-1.0 - 1.28 + 0.8 + 10.0) / 4, 1e-12);
  EXPECT_NEAR(stats.loss, loss, 1e-12);
  EXPECT_EQ(stats.clip_fraction, 0.5);
  EXPECT_EQ(stats.dual_clip_fraction, 0.25);
  EXPECT_NEAR(stats.approx_kl, -(std::log(1.5) + std::log(0.5) + 3.0) / 4, 1e-12);
  EXPECT_EQ(stats.kl, 0.0);
}

TEST(PolicyLossTest, DecoupledWeightsAreCappedAndCarryNoGradient) {
  // Tokens with behaviour weights exp(old - behaviour) = 1.5 and 3 (capped at 2).
  const at::Tensor old = Row({0.0, 0.0});
  at::Tensor behavior = Row({-std::log(1.5), -std::log(3.0)}).requires_grad_(true);
  const at::Tensor adv = Row({1.0, -0.5});
  const at::Tensor mask = Row({1, 1});
  const std::vector<double> x = {std::log(1.1), std::log(0.95)};
  auto loss_at = [&](const std::vector<double>& v, PolicyLossStats* stats) {
    return PolicyLoss(Row(v), old, adv, mask, {}, behavior, at::Tensor(), stats);
  };
  PolicyLossStats stats;
  EXPECT_NEAR(loss_at(x, &stats).item<double>(), (1.5 * -1.1 + 2.0 * 0.5 * 0.95) / 2, 1e-12);

  at::Tensor logp = Row(x).requires_grad_(true);
  PolicyLoss(logp, old, adv, mask, {}, behavior, at::Tensor(), nullptr).backward();
  // Analytic: d/dlogp (-A r w) / N = -A r w / N with w a constant.
  EXPECT_NEAR(logp.grad()[0][0].item<double>(), -1.0 * 1.1 * 1.5 / 2, 1e-12);
  EXPECT_NEAR(logp.grad()[0][1].item<double>(), 0.5 * 0.95 * 2.0 / 2, 1e-12);
  // Central differences agree.
  const double h = 1e-6;
  for (size_t i = 0; i < x.size(); ++i) {
    std::vector<double> up = x, down = x;
    up[i] += h;
    down[i] -= h;
    const double numeric =
        (loss_at(up, nullptr).item<double>() - loss_at(down, nullptr).item<double>()) / (2 * h);
    EXPECT_NEAR(logp.grad()[0][static_cast<int64_t>(i)].item<double>(), numeric, 1e-8) << i;
  }
  // Nothing flows into the behaviour log-probs.
  EXPECT_FALSE(behavior.grad().defined() && behavior.grad().abs().sum().item<double>() != 0.0);
}

TEST(PolicyLossTest, KlPenaltyIsTheK3Estimator) {
  PolicyLossConfig config;
  config.kl_coef = 0.5;
  // A = 0, so only the KL term remains; ref - logp = 0.5 and -0.25.
  const at::Tensor logp = Row({-1.0, -2.0});
  const at::Tensor ref = Row({-0.5, -2.25});
  const at::Tensor zeros = at::zeros({1, 2}, at::kDouble);
  PolicyLossStats stats;
  const double loss =
      PolicyLoss(logp, logp, zeros, at::ones_like(zeros), config, at::Tensor(), ref, &stats)
          .item<double>();
  const double k1 = std::exp(0.5) - 0.5 - 1, k2 = std::exp(-0.25) + 0.25 - 1;
  EXPECT_NEAR(stats.kl, (k1 + k2) / 2, 1e-12);
  EXPECT_NEAR(stats.kl, (0.148721271 + 0.028800783) / 2, 1e-9);
  EXPECT_NEAR(loss, 0.5 * (k1 + k2) / 2, 1e-12);
  // kl_coef 0 ignores the reference.
  EXPECT_EQ(PolicyLoss(logp, logp, zeros, at::ones_like(zeros), {}, at::Tensor(), ref, &stats)
                .item<double>(),
            0.0);
  EXPECT_EQ(stats.kl, 0.0);
}

TEST(PolicyLossTest, EmptyMaskGivesZeroLoss) {
  const at::Tensor x = Row({0.3, -0.2});
  PolicyLossStats stats;
  EXPECT_EQ(PolicyLoss(x, x * 0, x, at::zeros_like(x), {}, at::Tensor(), at::Tensor(), &stats)
                .item<double>(),
            0.0);
  EXPECT_EQ(stats.tokens, 0.0);
}

}  // namespace
}  // namespace deepsearch
