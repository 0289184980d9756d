// Translation between the actor's core types and deepsearch.v1 messages (the gRPC adapters'
// half of the actor; no algorithm here).
//
// Unset proto fields take defaults: a SearchParams field that is 0 or UNSPECIFIED takes the
// paper's value (search/search_params.h); sampling temperature 0 means 1.0, top_p 0 means 1.0.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "deepsearch/v1/common.pb.h"
#include "deepsearch/v1/learner_service.pb.h"
#include "search/lease_plan.h"
#include "search/mcts_tree.h"
#include "search/search_params.h"

#include "common/sampling/sampler.h"
#include "common/tasks/problem.h"

namespace deepsearch {

Problem ProblemFromProto(const v1::Problem& proto);
v1::Problem ProblemToProto(const Problem& problem);

SearchParams SearchParamsFromProto(const v1::SearchParams& proto);
// A lease's mode; InvalidArgument naming the number for an unknown or unspecified one.
absl::StatusOr<LeaseMode> LeaseModeFromProto(v1::LeaseMode mode);
v1::SearchParams SearchParamsToProto(const SearchParams& params);

// The sampling settings of a lease; max_new_tokens is left to the search mode.
SamplingParams SamplingParamsFromProto(const v1::SamplingParams& proto);

v1::Verdict VerdictToProto(const Verdict& verdict, bool incomplete);

// Ids and the prompt of a trajectory (spec: "<tree_id>/<index>").
struct TrajectoryIds {
  std::string lease_id;
  std::string job_id;
  std::string problem_id;
  std::string tree_id;
};
v1::Trajectory TrajectoryToProto(const ScoredTrajectory& trajectory, const TrajectoryIds& ids,
                                 int32_t index, const std::vector<int32_t>& prompt_tokens);

}  // namespace deepsearch
