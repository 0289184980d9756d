// The outer loop of a training job (DEEPSEARCH_SPEC §1.1, §1.2, §2): hard-subset screening,
// rounds of training steps on the hard subset, replay admission, and re-screening with the
// improved policy. Torch- and gRPC-free: it says which leases to issue next and takes their
// results; the learner process runs the leases and the trainer.
//
//   round i:
//     screening   one ROLLOUT lease of screen_samples direct samples per problem of the
//                 current set; a problem stays hard when #correct <= max_pass1 * samples
//                 (the released data keep Pass1@4 = 0% and 25%: at most 1 of 4).
//     training    steps_per_round steps; each takes the next batch_problems problems of the
//                 hard subset (shuffled per epoch with the job's seed) as SEARCH leases
//                 (algorithm "deepsearch"; ROLLOUT for "grpo") of `trajectories` leaves each;
//                 problems in the replay buffer are leased with use_solution_cache, so the
//                 actor trains them on cached solutions plus fresh rollouts (§2).
//     admission   problems whose fresh training trajectories of the round were correct with
//                 0 < fraction <= admit_max_fraction join the replay buffer (the reference
//                 code's rule; the Pass1@K variant admits problems solved by search that
//                 re-screening still finds hard).
//   The next round re-screens the current hard subset; the job ends when the hard subset is
//   empty, after max_rounds rounds, after max_steps training steps, or once the job has
//   generated max_generated_tokens response tokens in its training steps (each sampled token
//   once, as the actors count them: a tree's shared prefixes once; screening and cached
//   solutions are not counted): a token budget, checked after each step.
//
// Thread-compatible; the learner drives it from one thread. Its state serialises to JSON for
// checkpoints (problems are stored by the job, not here).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

#include "common/core/config.h"
#include "common/core/rng.h"
#include "common/tasks/problem.h"
#include "learner/lease_manager.h"

namespace deepsearch {

enum class ReplayAdmission {
  kRoundFraction,  // 0 < fraction correct among the round's fresh trajectories <=
                   // admit_max_fraction
  kPass1,          // found by search during the round, and still hard at the next screening
};

// The training algorithm of a TRAIN job: DeepSearch's tree search (SEARCH leases, Tree-GRPO
// on node q-values) or plain GRPO (ROLLOUT leases, outcome rewards).
enum class Algorithm { kDeepSearch, kGrpo };
// "deepsearch" or "grpo": how the configuration, the wire and job.json spell it.
std::string_view AlgorithmName(Algorithm algorithm);
// The algorithm `name` spells; nullopt for any other text.
std::optional<Algorithm> ParseAlgorithm(std::string_view name);

struct TrainProgramConfig {
  Algorithm algorithm = Algorithm::kDeepSearch;
  int32_t batch_problems = 256;
  int32_t trajectories = 8;
  int32_t screen_samples = 4;
  double max_pass1 = 0.25;
  bool screen = true;  // false: every problem is hard from the start
  int32_t steps_per_round = 100;
  int32_t max_rounds = 0;            // 0: until the hard subset is empty
  int64_t max_steps = 0;             // 0: no limit
  int64_t max_generated_tokens = 0;  // 0: no limit
  ReplayAdmission admission = ReplayAdmission::kRoundFraction;
  double admit_max_fraction = 0.25;
  uint64_t seed = 0;

  void Bind(ConfigBinder& b);
};

// One round's numbers ([P] Table 6).
struct RoundStats {
  int32_t round = 0;
  int64_t screened = 0;
  int64_t hard = 0;
  int64_t cached = 0;  // hard problems in the replay buffer
  int64_t steps = 0;
  int64_t admitted = 0;  // joined the replay buffer at the end of the round
};

class TrainProgram {
 public:
  enum class Phase { kScreening, kTraining, kDone };

  // `problem_ids` in the job's order. Errors: no problems, a bad algorithm name.
  static absl::StatusOr<TrainProgram> Create(std::string job_id,
                                             std::vector<std::string> problem_ids,
                                             TrainProgramConfig config);

  Phase phase() const { return phase_; }
  int32_t round() const { return round_; }
  int64_t step() const { return step_; }
  const std::vector<std::string>& hard_subset() const { return hard_; }
  const std::set<std::string>& replay_buffer() const { return replay_; }
  const std::vector<RoundStats>& rounds() const { return rounds_; }
  const TrainProgramConfig& config() const { return config_; }

  // kScreening: the problems to screen that have no result yet (each once per round; empty
  // after the first call until ReleaseScreening).
  std::vector<std::string> TakeScreening();
  // The screening leases were lost (a restart): the next TakeScreening returns the problems
  // still unscreened.
  void ReleaseScreening();
  // The screening result of one problem.
  void OnScreened(const std::string& problem_id, int32_t samples, int32_t correct);
  // Problems whose screening lease failed for good count as not screened: they leave the set.
  void OnScreeningFailed(const std::string& problem_id);
  // kTraining: the next step's problems, each with whether to lease it with the solution
  // cache. Requires the previous step to be done.
  struct StepProblem {
    std::string problem_id;
    bool use_solution_cache = false;
  };
  std::vector<StepProblem> NextStep();
  // Whether NextStep's step waits for StepDone.
  bool step_in_flight() const { return step_in_flight_; }
  // The step in flight is given up (its leases and trees are lost): NextStep takes the next
  // problems as the same step index.
  void ReleaseStep();
  // The outcome of one trained tree of the current round.
  void OnTrainingTree(const std::string& problem_id, int32_t fresh_trajectories,
                      int32_t fresh_correct);
  // The current step was trained: advances the step, and at the end of a round admits to the
  // replay buffer and starts the next screening. `generated_tokens`: the response tokens the
  // job's training steps have generated so far (screening left out), for the token budget.
  void StepDone(int64_t generated_tokens);
  // Whether the job's generated tokens have reached max_generated_tokens (as of the last step).
  bool OutOfTokens() const;

  // The kind of lease for a training step ("deepsearch": SEARCH; "grpo": ROLLOUT).
  LeaseKind training_kind() const;

  std::string ToJson() const;
  static absl::StatusOr<TrainProgram> FromJson(std::string_view json, std::string job_id);

 private:
  TrainProgram() = default;
  void StartRound();
  void FinishScreening();

  std::string job_id_;
  TrainProgramConfig config_;
  Phase phase_ = Phase::kScreening;
  int32_t round_ = 0;
  int64_t step_ = 0;
  int64_t round_steps_ = 0;
  int64_t generated_tokens_ = 0;      // as of the last StepDone
  std::vector<std::string> current_;  // the set being screened this round
  bool screening_taken_ = false;
  std::map<std::string, std::pair<int32_t, int32_t>> screen_results_;  // samples, correct
  std::vector<std::string> hard_;
  std::vector<std::string> order_;  // this epoch's shuffled hard subset
  size_t cursor_ = 0;
  int64_t epoch_ = 0;
  bool step_in_flight_ = false;
  std::map<std::string, std::pair<int32_t, int32_t>> round_outcomes_;  // fresh, correct
  std::set<std::string> replay_;
  std::set<std::string> found_by_search_;  // kPass1: solved during the last round
  std::vector<RoundStats> rounds_;
};

}  // namespace deepsearch
