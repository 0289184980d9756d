#include "common/core/rng.h"

#include <cmath>
#include <set>
#include <vector>

#include <gtest/gtest.h>

namespace deepsearch {
namespace {

// Reference values from an independent Python implementation of SplitMix64 seeding and
// xoshiro256** (the algorithm as published by Blackman & Vigna), run once by hand:
//   seed 0  -> 0x99ec5f36cb75f2b4 0xbf6e1f784956452a 0x1a5f849d4933e6e0 0x6aa594f1262d2d2c
//   seed 42 -> 0x15780b2e0c2ec716 0x6104d9866d113a7e 0xae17533239e499a1 0xecb8ad4703b360a1
TEST(RngTest, MatchesReferenceOutputs) {
  Rng zero(0);
  EXPECT_EQ(zero.Next(), 0x99ec5f36cb75f2b4ULL);
  EXPECT_EQ(zero.Next(), 0xbf6e1f784956452aULL);
  EXPECT_EQ(zero.Next(), 0x1a5f849d4933e6e0ULL);
  EXPECT_EQ(zero.Next(), 0x6aa594f1262d2d2cULL);
  Rng r(42);
  EXPECT_EQ(r.Next(), 0x15780b2e0c2ec716ULL);
  EXPECT_EQ(r.Next(), 0x6104d9866d113a7eULL);
  EXPECT_EQ(r.Next(), 0xae17533239e499a1ULL);
  EXPECT_EQ(r.Next(), 0xecb8ad4703b360a1ULL);
  // SplitMix64's well-known first outputs.
  EXPECT_EQ(SplitMix64(0), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(SplitMix64(1), 0x910a2dec89025cc1ULL);
}

TEST(RngTest, UniformUsesTheTop53Bits) {
  Rng r(42);
  EXPECT_DOUBLE_EQ(r.Uniform(), 0.08386297105988216);
  EXPECT_DOUBLE_EQ(r.Uniform(), 0.3789802506626686);
}

TEST(RngTest, UniformIntIsInRangeAndUnbiased) {
  Rng r(7);
  std::vector<int> counts(6, 0);
  constexpr int kDraws = 60000;
  for (int i = 0; i < kDraws; ++i) {
    const int64_t v = r.UniformInt(-2, 3);
    ASSERT_GE(v, -2);
    ASSERT_LE(v, 3);
    ++counts[static_cast<size_t>(v + 2)];
  }
  // Chi-square with 5 degrees of freedom; 20.5 is the 0.999 quantile.
  double chi2 = 0;
  for (int c : counts) chi2 += (c - kDraws / 6.0) * (c - kDraws / 6.0) / (kDraws / 6.0);
  EXPECT_LT(chi2, 20.5);
  EXPECT_EQ(r.UniformInt(5, 5), 5);
  Rng full(1);
  full.UniformInt(std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
}

TEST(RngTest, NormalHasUnitMoments) {
  Rng r(3);
  double sum = 0, sum2 = 0;
  constexpr int kN = 100000;
  for (int i = 0; i < kN; ++i) {
    const double x = r.Normal();
    sum += x;
    sum2 += x * x;
  }
  EXPECT_NEAR(sum / kN, 0.0, 0.02);
  EXPECT_NEAR(sum2 / kN, 1.0, 0.02);
}

TEST(RngTest, ForksAreReproducibleAndDistinct) {
  const Rng parent(99);
  Rng a1 = parent.Fork(1), a2 = parent.Fork(1), b = parent.Fork(2);
  std::set<uint64_t> firsts;
  for (uint64_t k = 0; k < 1000; ++k) firsts.insert(parent.Fork(k).Next());
  EXPECT_EQ(firsts.size(), 1000u);
  for (int i = 0; i < 10; ++i) {
    const uint64_t x = a1.Next();
    EXPECT_EQ(x, a2.Next());
    EXPECT_NE(x, b.Next());
  }
  EXPECT_NE(DeriveSeed(5, "sampling"), DeriveSeed(5, "search"));
  EXPECT_EQ(DeriveSeed(5, "sampling"), DeriveSeed(5, "sampling"));
}

TEST(RngTest, StateRoundTripResumesExactly) {
  Rng r(11);
  for (int i = 0; i < 5; ++i) r.Next();
  const Rng::State saved = r.GetState();
  std::vector<uint64_t> expected;
  for (int i = 0; i < 5; ++i) expected.push_back(r.Next());
  Rng resumed(0);
  resumed.SetState(saved);
  for (uint64_t e : expected) EXPECT_EQ(resumed.Next(), e);
}

TEST(RngDeathTest, EmptyRangeCrashes) {
  Rng r(1);
  EXPECT_DEATH(r.UniformInt(3, 2), "UniformInt\\(3, 2\\)");
}

}  // namespace
}  // namespace deepsearch
