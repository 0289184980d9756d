#include "learner/train_program.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

#include "common/tasks/hard_subset.h"

namespace deepsearch {

using Json = nlohmann::json;

std::string_view AlgorithmName(Algorithm algorithm) {
  return algorithm == Algorithm::kGrpo ? "grpo" : "deepsearch";
}

std::optional<Algorithm> ParseAlgorithm(std::string_view name) {
  if (name == "deepsearch") return Algorithm::kDeepSearch;
  if (name == "grpo") return Algorithm::kGrpo;
  return std::nullopt;
}

void TrainProgramConfig::Bind(ConfigBinder& b) {
  b.Enum("algorithm", algorithm,
         {{"deepsearch", Algorithm::kDeepSearch}, {"grpo", Algorithm::kGrpo}},
         "deepsearch (tree search) or grpo (direct rollouts, outcome reward)");
  b.Field("batch_problems", batch_problems, "Problems per training step (the paper: 256)")
      .Range(1, 1 << 20);
  b.Field("trajectories", trajectories, "Trajectories per problem (leaves per tree; the paper: 8)")
      .Range(1, 4096);
  b.Field("screen_samples", screen_samples, "K of the Pass1@K screening for the hard subset")
      .Range(1, 4096);
  b.Field("max_pass1", max_pass1, "A problem is hard when its Pass1@K is at most this")
      .Range(0.0, 1.0);
  b.Field("screen", screen, "Screen for the hard subset (false: train on every problem)");
  b.Field("steps_per_round", steps_per_round, "Training steps per round").Range(1, 1 << 30);
  b.Field("max_rounds", max_rounds, "Rounds to run (0: until the hard subset is empty)").Min(0);
  b.Field("max_steps", max_steps, "Training steps in all (0: no limit)").Min(0);
  b.Field("max_generated_tokens", max_generated_tokens,
          "Token budget: the job ends after the step that brings its generated response tokens "
          "(screening and training) to this many (0: no limit)")
      .Min(0);
  b.Enum("admission", admission,
         {{"round_fraction", ReplayAdmission::kRoundFraction}, {"pass1", ReplayAdmission::kPass1}},
         "Replay admission: round_fraction (0 < correct fraction <= admit_max_fraction) or pass1");
  b.Field("admit_max_fraction", admit_max_fraction, "Upper bound of the round_fraction admission")
      .Range(0.0, 1.0);
  b.Field("seed", seed, "Seed of the per-epoch shuffle of the hard subset");
}

absl::StatusOr<TrainProgram> TrainProgram::Create(std::string job_id,
                                                  std::vector<std::string> problem_ids,
                                                  TrainProgramConfig config) {
  if (problem_ids.empty())
    return absl::InvalidArgumentError(absl::StrCat("job ", job_id, ": no problems"));
  if (config.batch_problems < 1 || config.trajectories < 1 || config.screen_samples < 1 ||
      config.steps_per_round < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "job ", job_id,
        ": batch_problems, trajectories, screen_samples and steps_per_round must be >= 1"));
  }
  TrainProgram p;
  p.job_id_ = std::move(job_id);
  p.config_ = std::move(config);
  p.hard_ = std::move(problem_ids);
  p.StartRound();
  return p;
}

LeaseKind TrainProgram::training_kind() const {
  return config_.algorithm == Algorithm::kGrpo ? LeaseKind::kRollout : LeaseKind::kSearch;
}

void TrainProgram::StartRound() {
  if (!rounds_.empty()) ++round_;
  round_steps_ = 0;
  round_outcomes_.clear();
  if (config_.screen) {
    phase_ = Phase::kScreening;
    current_ = hard_;
    screening_taken_ = false;
    screen_results_.clear();
    if (current_.empty()) FinishScreening();
    return;
  }
  // No screening: the whole set is the hard subset, every round.
  rounds_.push_back(RoundStats{.round = round_,
                               .screened = 0,
                               .hard = static_cast<int64_t>(hard_.size()),
                               .cached = 0,
                               .steps = 0,
                               .admitted = 0});
  for (const std::string& id : hard_) rounds_.back().cached += replay_.count(id) > 0 ? 1 : 0;
  phase_ = Phase::kTraining;
  order_.clear();
  cursor_ = 0;
}

std::vector<std::string> TrainProgram::TakeScreening() {
  if (phase_ != Phase::kScreening || screening_taken_) return {};
  screening_taken_ = true;
  std::vector<std::string> out;
  for (const std::string& id : current_) {
    if (screen_results_.count(id) == 0) out.push_back(id);
  }
  return out;
}

void TrainProgram::ReleaseScreening() { screening_taken_ = false; }

void TrainProgram::OnScreened(const std::string& problem_id, int32_t samples, int32_t correct) {
  if (phase_ != Phase::kScreening) return;
  screen_results_[problem_id] = {samples, correct};
  if (screen_results_.size() >= current_.size()) FinishScreening();
}

void TrainProgram::OnScreeningFailed(const std::string& problem_id) {
  OnScreened(problem_id, 0, 0);
}

void TrainProgram::FinishScreening() {
  std::vector<std::string> hard;
  for (const std::string& id : current_) {
    auto it = screen_results_.find(id);
    if (it == screen_results_.end() || it->second.first == 0) continue;  // not screened: drops out
    if (IsHard(SampleOutcomes{id, it->second.first, it->second.second}, config_.max_pass1))
      hard.push_back(id);
  }
  hard_ = std::move(hard);
  if (config_.admission == ReplayAdmission::kPass1 && !rounds_.empty()) {
    // Solved by search during the last round, and still hard for the updated policy.
    for (const std::string& id : hard_) {
      if (found_by_search_.count(id) > 0 && replay_.insert(id).second) ++rounds_.back().admitted;
    }
  }
  found_by_search_.clear();
  RoundStats stats{.round = round_,
                   .screened = static_cast<int64_t>(current_.size()),
                   .hard = static_cast<int64_t>(hard_.size()),
                   .cached = 0,
                   .steps = 0,
                   .admitted = 0};
  for (const std::string& id : hard_) stats.cached += replay_.count(id) > 0 ? 1 : 0;
  rounds_.push_back(stats);
  current_.clear();
  screen_results_.clear();
  order_.clear();
  cursor_ = 0;
  const bool out_of_rounds = config_.max_rounds > 0 && round_ >= config_.max_rounds;
  const bool out_of_steps = config_.max_steps > 0 && step_ >= config_.max_steps;
  phase_ = hard_.empty() || out_of_rounds || out_of_steps || OutOfTokens() ? Phase::kDone
                                                                           : Phase::kTraining;
}

std::vector<TrainProgram::StepProblem> TrainProgram::NextStep() {
  if (phase_ != Phase::kTraining || step_in_flight_ || hard_.empty()) return {};
  const size_t batch = std::min(static_cast<size_t>(config_.batch_problems), hard_.size());
  std::vector<StepProblem> out;
  std::set<std::string> taken;
  while (out.size() < batch) {
    if (cursor_ >= order_.size()) {
      // A new epoch: the hard subset in a fresh order (a function of seed, round and epoch).
      order_ = hard_;
      Rng rng =
          Rng(config_.seed)
              .Fork(static_cast<uint64_t>(round_) * 1'000'003u + static_cast<uint64_t>(epoch_++));
      for (size_t i = order_.size(); i > 1; --i) {
        std::swap(order_[i - 1],
                  order_[static_cast<size_t>(rng.UniformInt(0, static_cast<int64_t>(i) - 1))]);
      }
      cursor_ = 0;
    }
    const std::string& id = order_[cursor_++];
    if (!taken.insert(id).second) continue;  // each problem once per step
    out.push_back(StepProblem{id, replay_.count(id) > 0});
  }
  step_in_flight_ = true;
  return out;
}

void TrainProgram::ReleaseStep() { step_in_flight_ = false; }

void TrainProgram::OnTrainingTree(const std::string& problem_id, int32_t fresh_trajectories,
                                  int32_t fresh_correct) {
  auto& [fresh, correct] = round_outcomes_[problem_id];
  fresh += fresh_trajectories;
  correct += fresh_correct;
  if (fresh_correct > 0) found_by_search_.insert(problem_id);
}

bool TrainProgram::OutOfTokens() const {
  return config_.max_generated_tokens > 0 && generated_tokens_ >= config_.max_generated_tokens;
}

void TrainProgram::StepDone(int64_t generated_tokens) {
  if (phase_ != Phase::kTraining) return;
  step_in_flight_ = false;
  ++step_;
  ++round_steps_;
  generated_tokens_ = std::max(generated_tokens_, generated_tokens);
  if (!rounds_.empty()) ++rounds_.back().steps;
  const bool out_of_budget = (config_.max_steps > 0 && step_ >= config_.max_steps) || OutOfTokens();
  if (round_steps_ < config_.steps_per_round && !out_of_budget) return;
  // End of the round: admission by the round's fraction correct.
  if (config_.admission == ReplayAdmission::kRoundFraction) {
    for (const auto& [id, outcome] : round_outcomes_) {
      const auto [fresh, correct] = outcome;
      if (fresh <= 0 || correct <= 0) continue;
      const double fraction = static_cast<double>(correct) / fresh;
      if (fraction <= config_.admit_max_fraction && replay_.insert(id).second)
        ++rounds_.back().admitted;
    }
  }
  const bool out_of_rounds = config_.max_rounds > 0 && round_ + 1 >= config_.max_rounds;
  if (out_of_budget || out_of_rounds) {
    phase_ = Phase::kDone;
    return;
  }
  StartRound();
}

std::string TrainProgram::ToJson() const {
  Json j;
  j["phase"] = static_cast<int>(phase_);
  j["round"] = round_;
  j["step"] = step_;
  j["round_steps"] = round_steps_;
  j["generated_tokens"] = generated_tokens_;
  j["current"] = current_;
  j["screening_taken"] = screening_taken_;
  Json screen = Json::object();
  for (const auto& [id, r] : screen_results_) screen[id] = {r.first, r.second};
  j["screen_results"] = screen;
  j["hard"] = hard_;
  j["order"] = order_;
  j["cursor"] = cursor_;
  j["epoch"] = epoch_;
  j["step_in_flight"] = step_in_flight_;
  Json outcomes = Json::object();
  for (const auto& [id, r] : round_outcomes_) outcomes[id] = {r.first, r.second};
  j["round_outcomes"] = outcomes;
  j["replay"] = std::vector<std::string>(replay_.begin(), replay_.end());
  j["found_by_search"] = std::vector<std::string>(found_by_search_.begin(), found_by_search_.end());
  Json rounds = Json::array();
  for (const RoundStats& r : rounds_) {
    rounds.push_back({{"round", r.round},
                      {"screened", r.screened},
                      {"hard", r.hard},
                      {"cached", r.cached},
                      {"steps", r.steps},
                      {"admitted", r.admitted}});
  }
  j["rounds"] = rounds;
  Json c;
  c["algorithm"] = std::string(AlgorithmName(config_.algorithm));
  c["batch_problems"] = config_.batch_problems;
  c["trajectories"] = config_.trajectories;
  c["screen_samples"] = config_.screen_samples;
  c["max_pass1"] = config_.max_pass1;
  c["screen"] = config_.screen;
  c["steps_per_round"] = config_.steps_per_round;
  c["max_rounds"] = config_.max_rounds;
  c["max_steps"] = config_.max_steps;
  c["max_generated_tokens"] = config_.max_generated_tokens;
  c["admission"] = config_.admission == ReplayAdmission::kPass1 ? "pass1" : "round_fraction";
  c["admit_max_fraction"] = config_.admit_max_fraction;
  c["seed"] = config_.seed;
  j["config"] = c;
  return j.dump();
}

absl::StatusOr<TrainProgram> TrainProgram::FromJson(std::string_view json, std::string job_id) {
  const std::string where = absl::StrCat("job ", job_id, ": training state");
  Json j = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(absl::StrCat(where, " is not a JSON object"));
  }
  try {
    TrainProgram p;
    p.job_id_ = std::move(job_id);
    const Json& c = j.at("config");
    const std::optional<Algorithm> algorithm = ParseAlgorithm(c.at("algorithm").get<std::string>());
    if (!algorithm.has_value())
      return absl::DataLossError(
          absl::StrCat("job ", job_id, ": unknown algorithm in the program state"));
    p.config_.algorithm = *algorithm;
    p.config_.batch_problems = c.at("batch_problems").get<int32_t>();
    p.config_.trajectories = c.at("trajectories").get<int32_t>();
    p.config_.screen_samples = c.at("screen_samples").get<int32_t>();
    p.config_.max_pass1 = c.at("max_pass1").get<double>();
    p.config_.screen = c.at("screen").get<bool>();
    p.config_.steps_per_round = c.at("steps_per_round").get<int32_t>();
    p.config_.max_rounds = c.at("max_rounds").get<int32_t>();
    p.config_.max_steps = c.at("max_steps").get<int64_t>();
    // Absent from checkpoints written before the token budget existed.
    p.config_.max_generated_tokens = c.value("max_generated_tokens", int64_t{0});
    p.config_.admission = c.at("admission").get<std::string>() == "pass1"
                              ? ReplayAdmission::kPass1
                              : ReplayAdmission::kRoundFraction;
    p.config_.admit_max_fraction = c.at("admit_max_fraction").get<double>();
    p.config_.seed = c.at("seed").get<uint64_t>();
    p.phase_ = static_cast<Phase>(j.at("phase").get<int>());
    p.round_ = j.at("round").get<int32_t>();
    p.step_ = j.at("step").get<int64_t>();
    p.round_steps_ = j.at("round_steps").get<int64_t>();
    p.generated_tokens_ = j.value("generated_tokens", int64_t{0});
    p.current_ = j.at("current").get<std::vector<std::string>>();
    p.screening_taken_ = j.at("screening_taken").get<bool>();
    for (const auto& [id, r] : j.at("screen_results").items()) p.screen_results_[id] = {r[0], r[1]};
    p.hard_ = j.at("hard").get<std::vector<std::string>>();
    p.order_ = j.at("order").get<std::vector<std::string>>();
    p.cursor_ = j.at("cursor").get<size_t>();
    p.epoch_ = j.at("epoch").get<int64_t>();
    p.step_in_flight_ = j.at("step_in_flight").get<bool>();
    for (const auto& [id, r] : j.at("round_outcomes").items()) p.round_outcomes_[id] = {r[0], r[1]};
    for (const std::string& id : j.at("replay").get<std::vector<std::string>>())
      p.replay_.insert(id);
    for (const std::string& id : j.at("found_by_search").get<std::vector<std::string>>()) {
      p.found_by_search_.insert(id);
    }
    for (const Json& r : j.at("rounds")) {
      p.rounds_.push_back(RoundStats{.round = r.at("round"),
                                     .screened = r.at("screened"),
                                     .hard = r.at("hard"),
                                     .cached = r.at("cached"),
                                     .steps = r.at("steps"),
                                     .admitted = r.at("admitted")});
    }
    return p;
  } catch (const Json::exception& e) {
    return absl::DataLossError(absl::StrCat(where, ": ", e.what()));
  }
}

}  // namespace deepsearch
