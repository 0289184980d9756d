#include "search/lease_plan.h"

#include <utility>

namespace deepsearch {

LeasePlan PlanLease(LeaseMode mode, std::vector<CachedSolution> cached) {
  LeasePlan plan;
  switch (mode) {
    case LeaseMode::kSearch:
      plan.mode = cached.empty() ? TreeMode::kSearch : TreeMode::kRollout;
      plan.cached = std::move(cached);
      break;
    case LeaseMode::kRollout:
      plan.mode = TreeMode::kRollout;
      plan.cached = std::move(cached);
      break;
    case LeaseMode::kSolve:
      plan.mode = TreeMode::kSolve;
      break;
  }
  return plan;
}

}  // namespace deepsearch
