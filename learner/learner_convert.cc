#include "learner/learner_convert.h"

#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "wire/convert.h"

#include "common/core/status.h"

namespace deepsearch {
namespace {

using google::protobuf::util::TimeUtil;

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

template <typename Values>
absl::Status CheckFinite(const Values& values, std::string_view field, const std::string& id) {
  for (int i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values.Get(i))) {
      return absl::InvalidArgumentError(
          absl::StrCat("trajectory ", id, ": ", std::string(field), "[", i, "] is not finite"));
    }
  }
  return absl::OkStatus();
}

v1::LeaseMode LeaseModeToProto(LeaseKind kind) {
  switch (kind) {
    case LeaseKind::kSearch:
      return v1::LEASE_MODE_SEARCH;
    case LeaseKind::kRollout:
      return v1::LEASE_MODE_ROLLOUT;
    case LeaseKind::kSolve:
      return v1::LEASE_MODE_SOLVE;
  }
  return v1::LEASE_MODE_UNSPECIFIED;
}

}  // namespace

namespace {

// Everything about one trajectory that does not need its version ranges.
absl::Status CheckTrajectory(const v1::Trajectory& p) {
  const std::string& id = p.trajectory_id();
  if (id.empty()) return absl::InvalidArgumentError("a trajectory has no trajectory_id");
  if (p.lease_id().empty())
    return absl::InvalidArgumentError(absl::StrCat("trajectory ", id, ": no lease_id"));
  if (p.tree_id().empty())
    return absl::InvalidArgumentError(absl::StrCat("trajectory ", id, ": no tree_id"));
  const int n = p.response_tokens_size();
  if (n == 0)
    return absl::InvalidArgumentError(absl::StrCat("trajectory ", id, ": empty response"));
  if (p.token_scores_size() != n) {
    return absl::InvalidArgumentError(absl::StrCat("trajectory ", id, ": ", p.token_scores_size(),
                                                   " token_scores for ", n, " response tokens"));
  }
  if (!p.from_cache() && p.behavior_logprobs_size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("trajectory ", id, ": ", p.behavior_logprobs_size(), " behavior_logprobs for ",
                     n, " response tokens"));
  }
  if (p.from_cache() && p.behavior_logprobs_size() != 0 && p.behavior_logprobs_size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("trajectory ", id,
                     ": a cached solution's behavior_logprobs must be empty or one per token"));
  }
  if (p.tree_generated_tokens() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("trajectory ", id, ": tree_generated_tokens is ",
                                                   p.tree_generated_tokens(), ", must be >= 0"));
  }
  DS_RETURN_IF_ERROR(CheckFinite(p.token_scores(), "token_scores", id));
  DS_RETURN_IF_ERROR(CheckFinite(p.behavior_logprobs(), "behavior_logprobs", id));
  if (!std::isfinite(p.final_score()))
    return absl::InvalidArgumentError(
        absl::StrCat("trajectory ", id, ": final_score is not finite"));
  for (const auto& [tokens, name] : {std::pair{&p.response_tokens(), "response_tokens"},
                                     std::pair{&p.prompt_tokens(), "prompt_tokens"}}) {
    for (int i = 0; i < tokens->size(); ++i) {
      if ((*tokens)[i] < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("trajectory ", id, ": ", name, "[", i, "] is negative"));
      }
    }
  }
  return absl::OkStatus();
}

// The oldest weight version of the trajectory's ranges, which must tile [0, n) in order.
absl::StatusOr<int64_t> OldestVersion(const v1::Trajectory& p) {
  const std::string& id = p.trajectory_id();
  const int n = p.response_tokens_size();
  int64_t oldest = std::numeric_limits<int64_t>::max();
  int32_t next = 0;
  for (const v1::VersionRange& r : p.versions()) {
    if (r.begin() != next || r.end() <= r.begin() || r.end() > n) {
      return absl::InvalidArgumentError(
          absl::StrCat("trajectory ", id, ": version ranges must tile the ", n,
                       " response tokens in order; got [", r.begin(), ", ", r.end(), ")"));
    }
    next = r.end();
    oldest = std::min(oldest, r.weight_version());
  }
  if (next != n) {
    return absl::InvalidArgumentError(absl::StrCat("trajectory ", id, ": version ranges cover ",
                                                   next, " of ", n, " response tokens"));
  }

  return oldest;
}

}  // namespace

absl::StatusOr<TrajectoryRecord> TrajectoryFromProto(const v1::Trajectory& p) {
  DS_RETURN_IF_ERROR(CheckTrajectory(p));
  // The oldest version is the sequence's.
  DS_ASSIGN_OR_RETURN(const int64_t oldest, OldestVersion(p));
  const std::string& id = p.trajectory_id();
  TrajectoryRecord r;
  r.trajectory_id = id;
  r.lease_id = p.lease_id();
  r.tree_id = p.tree_id();
  r.correct = p.verdict().outcome() == v1::Verdict::OUTCOME_CORRECT;
  r.incomplete = p.verdict().outcome() == v1::Verdict::OUTCOME_INCOMPLETE;
  r.from_cache = p.from_cache();
  r.tree_generated_tokens = p.tree_generated_tokens();
  r.predicted = p.verdict().predicted();
  r.response_text = p.response_text();
  TrainSequence& s = r.sequence;
  s.group_id = p.tree_id();
  s.prompt_tokens.assign(p.prompt_tokens().begin(), p.prompt_tokens().end());
  s.response_tokens.assign(p.response_tokens().begin(), p.response_tokens().end());
  s.behavior_logprobs.assign(p.behavior_logprobs().begin(), p.behavior_logprobs().end());
  s.token_scores.assign(p.token_scores().begin(), p.token_scores().end());
  s.final_score = p.final_score();
  s.weight_version = oldest;
  return r;
}

v1::Lease LeaseToProto(const IssuedLease& lease) {
  v1::Lease p;
  const LeaseSpec& spec = lease.spec;
  p.set_lease_id(lease.lease_id);
  p.set_job_id(spec.job_id);
  p.set_mode(LeaseModeToProto(spec.kind));
  *p.mutable_problem() = ProblemToProto(spec.problem);
  p.set_num_trajectories(spec.num_trajectories);
  v1::SamplingParams* s = p.mutable_sampling();
  s->set_temperature(spec.sampling.temperature);
  s->set_top_p(spec.sampling.top_p);
  s->set_top_k(spec.sampling.top_k);
  s->set_seed(spec.sampling.seed);
  *p.mutable_search() = SearchParamsToProto(spec.search);
  p.set_min_weight_version(spec.min_weight_version);
  *p.mutable_deadline() = ToTimestamp(lease.deadline);
  p.set_attempt(lease.attempt);
  p.set_use_solution_cache(spec.use_solution_cache);
  return p;
}

absl::StatusOr<JobOptions> JobOptionsFromProto(const v1::JobOptions& proto) {
  JobOptions o;
  if (!proto.algorithm().empty()) {
    o.algorithm = ParseAlgorithm(proto.algorithm());
    if (!o.algorithm.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat("options.algorithm: unknown algorithm '",
                                                     proto.algorithm(), "' (deepsearch or grpo)"));
    }
  }
  if (proto.has_sampling()) {
    const v1::SamplingParams& s = proto.sampling();
    SamplingConfig c;
    c.temperature = s.temperature() == 0.0f ? 1.0f : s.temperature();
    c.top_p = s.top_p() == 0.0f ? 1.0f : s.top_p();
    c.top_k = s.top_k();
    if (!(c.temperature > 0.0f) || !(c.top_p > 0.0f && c.top_p <= 1.0f) || c.top_k < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "options.sampling: temperature must be > 0, top_p in (0, 1], top_k >= 0; got ",
          c.temperature, ", ", c.top_p, ", ", c.top_k));
    }
    o.sampling = c;
  }
  if (proto.has_search()) {
    SearchParams search = SearchParamsFromProto(proto.search());
    if (absl::Status s = search.Validate(); !s.ok())
      return absl::InvalidArgumentError(absl::StrCat("options.search: ", s.message()));
    o.search = std::move(search);
  }
  o.samples_per_problem = proto.samples_per_problem();
  o.max_steps = proto.max_steps();
  if (!proto.solve_mode().empty()) {  // empty: the default, search
    const std::optional<JobOptions::SolveMode> mode = ParseSolveMode(proto.solve_mode());
    if (!mode) {
      return absl::InvalidArgumentError(
          absl::StrCat("options.solve_mode must be \"search\" or \"rollout\", got \"",
                       proto.solve_mode(), "\""));
    }
    o.solve_mode = *mode;
  }
  return o;
}

absl::StatusOr<JobKind> JobKindFromProto(v1::JobKind kind) {
  switch (kind) {
    case v1::JOB_KIND_TRAIN:
      return JobKind::kTrain;
    case v1::JOB_KIND_SOLVE:
      return JobKind::kSolve;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "kind must be JOB_KIND_TRAIN or JOB_KIND_SOLVE; got ", static_cast<int>(kind)));
  }
}

v1::JobState JobStateToProto(JobState state) {
  switch (state) {
    case JobState::kPending:
      return v1::JOB_STATE_PENDING;
    case JobState::kRunning:
      return v1::JOB_STATE_RUNNING;
    case JobState::kSucceeded:
      return v1::JOB_STATE_SUCCEEDED;
    case JobState::kFailed:
      return v1::JOB_STATE_FAILED;
    case JobState::kCancelled:
      return v1::JOB_STATE_CANCELLED;
  }
  return v1::JOB_STATE_UNSPECIFIED;
}

absl::StatusOr<std::optional<JobState>> JobStateFilterFromProto(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_UNSPECIFIED:
      return std::optional<JobState>();
    case v1::JOB_STATE_PENDING:
      return std::optional<JobState>(JobState::kPending);
    case v1::JOB_STATE_RUNNING:
      return std::optional<JobState>(JobState::kRunning);
    case v1::JOB_STATE_SUCCEEDED:
      return std::optional<JobState>(JobState::kSucceeded);
    case v1::JOB_STATE_FAILED:
      return std::optional<JobState>(JobState::kFailed);
    case v1::JOB_STATE_CANCELLED:
      return std::optional<JobState>(JobState::kCancelled);
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("state_filter: unknown job state ", static_cast<int>(state)));
  }
}

v1::Job JobToProto(const Job& job, bool include_results) {
  v1::Job p;
  p.set_job_id(job.id);
  p.set_kind(job.kind == JobKind::kTrain ? v1::JOB_KIND_TRAIN : v1::JOB_KIND_SOLVE);
  p.set_state(JobStateToProto(job.state));
  p.set_name(job.name);
  *p.mutable_create_time() = ToTimestamp(job.create_time);
  *p.mutable_update_time() = ToTimestamp(job.update_time);
  v1::JobProgress* g = p.mutable_progress();
  g->set_problems_total(job.progress.problems_total);
  g->set_problems_done(job.progress.problems_done);
  g->set_problems_solved(job.progress.problems_solved);
  g->set_trajectories(job.progress.trajectories);
  g->set_generated_tokens(job.progress.generated_tokens);
  g->set_screening_tokens(job.progress.screening_tokens);
  g->set_trained_tokens(job.progress.trained_tokens);
  g->set_training_steps(job.progress.training_steps);
  g->set_weight_version(job.progress.weight_version);
  g->set_accuracy(job.progress.accuracy);
  g->set_phase(job.progress.phase);
  p.set_error(job.error);
  v1::JobOptions* o = p.mutable_options();
  if (job.options.algorithm) o->set_algorithm(std::string(AlgorithmName(*job.options.algorithm)));
  if (job.options.sampling.has_value()) {
    o->mutable_sampling()->set_temperature(job.options.sampling->temperature);
    o->mutable_sampling()->set_top_p(job.options.sampling->top_p);
    o->mutable_sampling()->set_top_k(job.options.sampling->top_k);
  }
  if (job.options.search.has_value())
    *o->mutable_search() = SearchParamsToProto(*job.options.search);
  o->set_samples_per_problem(job.options.samples_per_problem);
  o->set_max_steps(job.options.max_steps);
  if (job.options.solve_mode != JobOptions::SolveMode::kSearch)  // search: the default, unset
    o->set_solve_mode(std::string(SolveModeName(job.options.solve_mode)));
  if (include_results) {
    for (const ProblemResult& r : job.results) {
      v1::ProblemResult* q = p.add_results();
      q->set_problem_id(r.problem_id);
      q->set_answer(r.summary.answer);
      q->set_selection(r.summary.selection);
      q->set_correct(r.summary.correct);
      q->set_samples(r.summary.samples);
      q->set_correct_samples(r.summary.correct_samples);
      for (const auto& [k, v] : r.summary.pass_at_k) (*q->mutable_pass_at_k())[k] = v;
    }
  }
  return p;
}

}  // namespace deepsearch
