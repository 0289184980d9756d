#include "search/lease_plan.h"

#include "gtest/gtest.h"

namespace deepsearch {
namespace {

std::vector<CachedSolution> Cached(int n) {
  std::vector<CachedSolution> c;
  for (int i = 0; i < n; ++i) c.push_back(CachedSolution{{1, 2, 3 + i}, 4});
  return c;
}

TEST(PlanLeaseTest, ASolvedSearchProblemBecomesARolloutOfItsCachedSolutions) {
  LeasePlan plan = PlanLease(LeaseMode::kSearch, Cached(2));
  EXPECT_EQ(plan.mode, TreeMode::kRollout);
  ASSERT_EQ(plan.cached.size(), 2u);
  EXPECT_EQ(plan.cached[1].tokens, (std::vector<int32_t>{1, 2, 4}));
  EXPECT_TRUE(plan.from_cache());
  plan = PlanLease(LeaseMode::kSearch, {});
  EXPECT_EQ(plan.mode, TreeMode::kSearch);
  EXPECT_FALSE(plan.from_cache());
}

TEST(PlanLeaseTest, RolloutsKeepTheirCacheAndSolvesNeverUseIt) {
  LeasePlan plan = PlanLease(LeaseMode::kRollout, Cached(1));
  EXPECT_EQ(plan.mode, TreeMode::kRollout);
  EXPECT_EQ(plan.cached.size(), 1u);
  EXPECT_EQ(PlanLease(LeaseMode::kRollout, {}).mode, TreeMode::kRollout);
  plan = PlanLease(LeaseMode::kSolve, Cached(3));
  EXPECT_EQ(plan.mode, TreeMode::kSolve);
  EXPECT_TRUE(plan.cached.empty());
  EXPECT_FALSE(plan.from_cache());
}

}  // namespace
}  // namespace deepsearch
