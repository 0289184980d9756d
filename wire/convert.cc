#include "wire/convert.h"

#include "absl/strings/str_cat.h"

namespace deepsearch {

namespace {

template <typename T, typename P>
void IfSet(T& field, P value) {
  if (value != P{}) field = static_cast<T>(value);
}

}  // namespace

Problem ProblemFromProto(const v1::Problem& proto) {
  Problem p;
  p.id = proto.id();
  p.prompt = proto.prompt();
  p.answer = proto.answer();
  p.task = proto.task();
  for (const auto& [k, v] : proto.metadata()) p.metadata[k] = v;
  return p;
}

v1::Problem ProblemToProto(const Problem& problem) {
  v1::Problem p;
  p.set_id(problem.id);
  p.set_prompt(problem.prompt);
  p.set_answer(problem.answer);
  p.set_task(problem.task);
  for (const auto& [k, v] : problem.metadata) (*p.mutable_metadata())[k] = v;
  return p;
}

SearchParams SearchParamsFromProto(const v1::SearchParams& proto) {
  SearchParams s;
  IfSet(s.max_depth, proto.max_depth());
  IfSet(s.step_tokens, proto.step_tokens());
  s.step_delimiter = proto.step_delimiter();
  IfSet(s.expansion_width, proto.expansion_width());
  IfSet(s.trajectories_per_tree, proto.trajectories_per_tree());
  IfSet(s.uct_lambda, proto.uct_lambda());
  IfSet(s.gamma_min, proto.gamma_min());
  IfSet(s.lambda_quality, proto.lambda_quality());
  IfSet(s.lambda_entropy, proto.lambda_entropy());
  IfSet(s.lambda_depth, proto.lambda_depth());
  s.entropy_bonus = proto.entropy_bonus();
  switch (proto.depth_bonus()) {
    case v1::DEPTH_BONUS_LOG:
      s.depth_bonus = DepthBonus::kLog;
      break;
    case v1::DEPTH_BONUS_CONSTANT:
      s.depth_bonus = DepthBonus::kConstant;
      break;
    default:
      s.depth_bonus = DepthBonus::kSqrt;
  }
  s.backtrace = proto.backtrace() == v1::BACKTRACE_UCT ? Backtrace::kUct : Backtrace::kGlobal;
  s.q_update = proto.q_update() == v1::Q_UPDATE_VANILLA ? QUpdate::kVanilla : QUpdate::kConstrained;
  switch (proto.negative_choice()) {
    case v1::NEGATIVE_CHOICE_LEAST_CONFIDENT:
      s.negative_choice = NegativeChoice::kLeastConfident;
      break;
    case v1::NEGATIVE_CHOICE_RANDOM:
      s.negative_choice = NegativeChoice::kRandom;
      break;
    default:
      s.negative_choice = NegativeChoice::kMostConfident;
  }
  IfSet(s.incomplete_score, proto.incomplete_score());
  IfSet(s.q_soft_clip_temperature, proto.q_soft_clip_temperature());
  IfSet(s.q_max, proto.q_max());
  IfSet(s.max_response_tokens, proto.max_response_tokens());
  IfSet(s.overlong_buffer, proto.overlong_buffer());
  IfSet(s.overlong_factor, proto.overlong_factor());
  return s;
}

absl::StatusOr<LeaseMode> LeaseModeFromProto(v1::LeaseMode mode) {
  switch (mode) {
    case v1::LEASE_MODE_SEARCH:
      return LeaseMode::kSearch;
    case v1::LEASE_MODE_ROLLOUT:
      return LeaseMode::kRollout;
    case v1::LEASE_MODE_SOLVE:
      return LeaseMode::kSolve;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown lease mode ", static_cast<int>(mode)));
  }
}

v1::SearchParams SearchParamsToProto(const SearchParams& s) {
  v1::SearchParams p;
  p.set_max_depth(s.max_depth);
  p.set_step_tokens(s.step_tokens);
  p.set_step_delimiter(s.step_delimiter);
  p.set_expansion_width(s.expansion_width);
  p.set_trajectories_per_tree(s.trajectories_per_tree);
  p.set_uct_lambda(s.uct_lambda);
  p.set_gamma_min(s.gamma_min);
  p.set_lambda_quality(s.lambda_quality);
  p.set_lambda_entropy(s.lambda_entropy);
  p.set_lambda_depth(s.lambda_depth);
  p.set_entropy_bonus(s.entropy_bonus);
  p.set_depth_bonus(s.depth_bonus == DepthBonus::kLog        ? v1::DEPTH_BONUS_LOG
                    : s.depth_bonus == DepthBonus::kConstant ? v1::DEPTH_BONUS_CONSTANT
                                                             : v1::DEPTH_BONUS_SQRT);
  p.set_backtrace(s.backtrace == Backtrace::kUct ? v1::BACKTRACE_UCT : v1::BACKTRACE_GLOBAL);
  p.set_q_update(s.q_update == QUpdate::kVanilla ? v1::Q_UPDATE_VANILLA : v1::Q_UPDATE_CONSTRAINED);
  p.set_negative_choice(
      s.negative_choice == NegativeChoice::kLeastConfident ? v1::NEGATIVE_CHOICE_LEAST_CONFIDENT
      : s.negative_choice == NegativeChoice::kRandom       ? v1::NEGATIVE_CHOICE_RANDOM
                                                           : v1::NEGATIVE_CHOICE_MOST_CONFIDENT);
  p.set_incomplete_score(s.incomplete_score);
  p.set_q_soft_clip_temperature(s.q_soft_clip_temperature);
  p.set_q_max(s.q_max);
  p.set_max_response_tokens(s.max_response_tokens);
  p.set_overlong_buffer(s.overlong_buffer);
  p.set_overlong_factor(s.overlong_factor);
  return p;
}

SamplingParams SamplingParamsFromProto(const v1::SamplingParams& proto) {
  SamplingParams s;
  s.temperature = proto.temperature() == 0.0f ? 1.0f : proto.temperature();
  s.top_p = proto.top_p() == 0.0f ? 1.0f : proto.top_p();
  s.top_k = proto.top_k();
  s.seed = proto.seed();
  if (proto.max_new_tokens() > 0) s.max_new_tokens = proto.max_new_tokens();
  s.stop_token_ids.assign(proto.stop_token_ids().begin(), proto.stop_token_ids().end());
  s.stop_strings.assign(proto.stop_strings().begin(), proto.stop_strings().end());
  return s;
}

v1::Verdict VerdictToProto(const Verdict& verdict, bool incomplete) {
  v1::Verdict v;
  v.set_outcome(verdict.correct ? v1::Verdict::OUTCOME_CORRECT
                : incomplete    ? v1::Verdict::OUTCOME_INCOMPLETE
                                : v1::Verdict::OUTCOME_INCORRECT);
  v.set_reward(static_cast<float>(verdict.reward));
  v.set_predicted(verdict.predicted);
  v.set_reason(verdict.reason);
  return v;
}

v1::Trajectory TrajectoryToProto(const ScoredTrajectory& t, const TrajectoryIds& ids, int32_t index,
                                 const std::vector<int32_t>& prompt_tokens) {
  v1::Trajectory p;
  p.set_trajectory_id(absl::StrCat(ids.tree_id, "/", index));
  p.set_lease_id(ids.lease_id);
  p.set_job_id(ids.job_id);
  p.set_problem_id(ids.problem_id);
  p.set_tree_id(ids.tree_id);
  p.mutable_prompt_tokens()->Add(prompt_tokens.begin(), prompt_tokens.end());
  p.mutable_response_tokens()->Add(t.response_tokens.begin(), t.response_tokens.end());
  p.mutable_behavior_logprobs()->Add(t.logprobs.begin(), t.logprobs.end());
  p.mutable_token_scores()->Add(t.token_scores.begin(), t.token_scores.end());
  p.mutable_step_ends()->Add(t.step_ends.begin(), t.step_ends.end());
  *p.mutable_verdict() = VerdictToProto(t.verdict, t.incomplete);
  p.mutable_verdict()->set_reward(
      static_cast<float>(t.reward));  // incomplete_score when incomplete
  int32_t begin = 0;
  for (const auto& [version, end] : t.versions) {
    v1::VersionRange* r = p.add_versions();
    r->set_weight_version(version);
    r->set_begin(begin);
    r->set_end(end);
    begin = end;
  }
  p.set_final_score(static_cast<float>(t.final_score));
  p.set_from_cache(t.from_cache);
  p.set_response_text(t.response_text);
  return p;
}

}  // namespace deepsearch
