// What tree a lease becomes (DEEPSEARCH_SPEC §2, the solution cache): the one rule of the
// method that an actor applies to the work it leases, kept here beside the search it
// configures so that it is tested without a learner or a network.
//
//   SEARCH   a problem the cache has verified solutions for is not searched again: the lease
//            becomes a ROLLOUT whose first min(|cached|, K) slots are the cached solutions
//            (the rest sampled); without cached solutions, an MCTS tree.
//   ROLLOUT  K direct samples, cached solutions (when asked for) in the first slots.
//   SOLVE    inference-time search, never from the cache: a solve answers the problem anew.
#pragma once

#include <vector>

#include "search/tree_runner.h"

namespace deepsearch {

enum class LeaseMode { kSearch, kRollout, kSolve };

struct LeasePlan {
  TreeMode mode = TreeMode::kSearch;
  std::vector<CachedSolution> cached;  // what fills the tree's first slots
  bool from_cache() const { return !cached.empty(); }
};

LeasePlan PlanLease(LeaseMode mode, std::vector<CachedSolution> cached);

}  // namespace deepsearch
