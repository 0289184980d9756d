// Translation between the learner's core types and deepsearch.v1 messages (the gRPC
// adapters' half of the learner; no algorithm here). Incoming messages are validated: a
// malformed one is refused with a message that names the field and the value.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "deepsearch/v1/common.pb.h"
#include "deepsearch/v1/learner_service.pb.h"
#include "deepsearch/v1/problem_service.pb.h"

#include "learner/job_store.h"
#include "learner/lease_manager.h"

namespace deepsearch {

// A trajectory as the learner ingests it. Refused: no trajectory, lease or tree id; an empty
// response; token_scores (and behaviour log-probs, unless from_cache) not one per response
// token; version ranges that do not tile the response; non-finite scores or log-probs.
absl::StatusOr<TrajectoryRecord> TrajectoryFromProto(const v1::Trajectory& proto);

v1::Lease LeaseToProto(const IssuedLease& lease);

// Job options from a request: unset messages take the learner's defaults (nullopt).
absl::StatusOr<JobOptions> JobOptionsFromProto(const v1::JobOptions& proto);
absl::StatusOr<JobKind> JobKindFromProto(v1::JobKind kind);
v1::JobState JobStateToProto(JobState state);
absl::StatusOr<std::optional<JobState>> JobStateFilterFromProto(v1::JobState state);

// The job as clients see it; results only when asked for.
v1::Job JobToProto(const Job& job, bool include_results);

}  // namespace deepsearch
