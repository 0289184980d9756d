// The learner's driver, end to end in one process: jobs, screening, rounds, training steps,
// weight versions, replay admission, checkpoints and an exact resume, solve jobs,
// cancellation and the async mode. An in-process fake actor (learner_testing.h) answers the
// leases with deterministic trajectories.
#include "learner/learner.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "common/core/files.h"
#include "common/model/model_dir.h"
#include "common/model/weight_export.h"
#include "tests/learner/learner_testing.h"

namespace deepsearch {
namespace {

using ::testing::ElementsAre;
using testing_learner::NumberedProblems;
using testing_learner::RecordingSink;
using testing_learner::ScratchDir;
using testing_learner::ServeLeases;
using testing_learner::TinyModel;

LearnerOptions SmallOptions(const ScratchDir& dir, const std::string& state) {
  LearnerOptions o;
  o.state_dir = dir.Sub(state);
  o.model = TinyModel(dir);
  o.program.batch_problems = 2;
  o.program.trajectories = 4;
  o.program.screen_samples = 4;
  o.program.steps_per_round = 2;
  o.program.max_rounds = 1;
  o.program.seed = 11;
  o.train.lr = 1e-3;
  o.train.warmup_steps = 0;
  o.train.mini_batches = 2;
  o.train.micro_batch_tokens = 64;
  o.checkpoint_every = 1;
  o.keep_checkpoints = 10;
  o.seed = 5;
  return o;
}

// Polls and serves until the job ends (or `max_polls`), returning the job.
Job RunUntilDone(Learner& learner, const std::string& job_id, int max_polls = 200,
                 int64_t stop_after_steps = -1) {
  for (int i = 0; i < max_polls; ++i) {
    EXPECT_TRUE(learner.Poll().ok());
    absl::StatusOr<Job> job = learner.jobs().Get(job_id);
    EXPECT_TRUE(job.ok());
    if (IsTerminal(job->state)) return *job;
    if (stop_after_steps >= 0 && learner.stats().training_steps >= stop_after_steps) return *job;
    ServeLeases(learner);
  }
  ADD_FAILURE() << "job " << job_id << " did not finish";
  return *learner.jobs().Get(job_id);
}

nlohmann::json ReadLearnerState(const std::string& checkpoint) {
  absl::StatusOr<std::string> text = ReadFileToString(checkpoint + "/learner.json");
  EXPECT_TRUE(text.ok()) << text.status();
  return nlohmann::json::parse(*text);
}

TEST(LearnerTest, TrainJobScreensTrainsPublishesAndAdmitsToReplay) {
  ScratchDir dir("learner_train");
  RecordingSink sink;
  auto learner = Learner::Create(SmallOptions(dir, "state"), &sink);
  ASSERT_TRUE(learner.ok()) << learner.status();
  Learner& l = **learner;
  EXPECT_THAT(sink.versions(), ElementsAre(1));  // the initial weights

  // p0..p3: p<k> has k of 4 screening samples correct: p0 and p1 are hard (Pass1@4 <= 25%).
  absl::StatusOr<Job> job =
      l.Submit(JobKind::kTrain, "train", NumberedProblems(4), JobOptions{}, "req-1");
  ASSERT_TRUE(job.ok()) << job.status();

  // Screening: one ROLLOUT lease of 4 samples per problem, on the current weights.
  ASSERT_TRUE(l.Poll().ok());
  std::vector<IssuedLease> screening = ServeLeases(l);
  ASSERT_EQ(screening.size(), 4u);
  for (const IssuedLease& lease : screening) {
    EXPECT_EQ(lease.spec.kind, LeaseKind::kRollout);
    EXPECT_EQ(lease.spec.num_trajectories, 4);
    EXPECT_EQ(lease.spec.min_weight_version, 1);
  }
  // The hard subset is {p0, p1}: training leases are SEARCH trees of 4 leaves for both.
  ASSERT_TRUE(l.Poll().ok());
  std::vector<IssuedLease> step1 = ServeLeases(l);
  ASSERT_EQ(step1.size(), 2u);
  std::set<std::string> ids;
  for (const IssuedLease& lease : step1) {
    EXPECT_EQ(lease.spec.kind, LeaseKind::kSearch);
    EXPECT_FALSE(lease.spec.use_solution_cache);
    ids.insert(lease.spec.problem.id);
  }
  EXPECT_EQ(ids, (std::set<std::string>{"p0", "p1"}));
  EXPECT_EQ(l.jobs().Get(job->id)->progress.problems_done, 2);  // p2, p3 left the set

  const Job done = RunUntilDone(l, job->id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.progress.training_steps, 2);
  EXPECT_EQ(done.progress.weight_version, 3);
  EXPECT_EQ(done.progress.problems_solved, 3);  // p1, p2, p3 had a correct trajectory
  EXPECT_EQ(done.progress.trajectories, 4 * 4 + 2 * 2 * 4);
  EXPECT_THAT(sink.versions(), ElementsAre(1, 2, 3));
  EXPECT_EQ(l.weight_version(), 3);

  // The round's fresh trajectories: p1 1 of 8 correct (admitted), p0 none (not admitted).
  const std::string checkpoint = LatestCheckpoint(dir.Sub("state"));
  ASSERT_FALSE(checkpoint.empty());
  const nlohmann::json state = ReadLearnerState(checkpoint);
  EXPECT_EQ(state["weight_version"], 3);
  const nlohmann::json program =
      nlohmann::json::parse(state["train"]["program"].get<std::string>());
  EXPECT_EQ(program["replay"], nlohmann::json::array({"p1"}));

  // The exported model loads and differs from the initial one.
  const std::string exported = dir.Sub("exported");
  ASSERT_TRUE(ExportCheckpoint(checkpoint, exported, "float32").ok());
  absl::StatusOr<LoadedModel> trained = LoadModelDirectory(exported, ModelOptions{});
  ASSERT_TRUE(trained.ok()) << trained.status();
  absl::StatusOr<WeightSet> now = l.CurrentWeights();
  ASSERT_TRUE(now.ok());
  absl::StatusOr<WeightSet> reexported = ExportWeights(*trained->model, 3, Dtype::kF32);
  ASSERT_TRUE(reexported.ok());
  EXPECT_EQ(reexported->payload, now->payload);
}

// Plain GRPO in the same learner: the same screening, then ROLLOUT leases of `trajectories`
// direct samples (no tree) per hard problem, trained with the same loss family on outcome
// rewards, published like every step.
TEST(LearnerTest, GrpoJobsTrainOnDirectRollouts) {
  ScratchDir dir("learner_grpo");
  RecordingSink sink;
  auto learner = Learner::Create(SmallOptions(dir, "state"), &sink);
  ASSERT_TRUE(learner.ok()) << learner.status();
  Learner& l = **learner;
  JobOptions options;
  options.algorithm = "grpo";
  absl::StatusOr<Job> job = l.Submit(JobKind::kTrain, "grpo", NumberedProblems(4), options, "g-1");
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(l.Poll().ok());
  ASSERT_EQ(ServeLeases(l).size(), 4u);  // screening
  ASSERT_TRUE(l.Poll().ok());
  const std::vector<IssuedLease> step1 = ServeLeases(l);
  ASSERT_EQ(step1.size(), 2u);
  for (const IssuedLease& lease : step1) {
    EXPECT_EQ(lease.spec.kind, LeaseKind::kRollout);
    EXPECT_EQ(lease.spec.num_trajectories, 4);
  }
  const Job done = RunUntilDone(l, job->id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.progress.training_steps, 2);
  EXPECT_THAT(sink.versions(), ElementsAre(1, 2, 3));
  // The weights moved.
  absl::StatusOr<WeightSet> now = l.CurrentWeights();
  ASSERT_TRUE(now.ok());
  auto fresh = Learner::Create(SmallOptions(dir, "fresh"), nullptr);
  ASSERT_TRUE(fresh.ok());
  EXPECT_NE(now->payload, (*fresh)->CurrentWeights()->payload);
}

TEST(LearnerTest, ResumeFromACheckpointContinuesExactlyAsAnUninterruptedRun) {
  ScratchDir dir("learner_resume");
  LearnerOptions options = SmallOptions(dir, "a");
  options.program.steps_per_round = 4;
  options.program.screen = false;  // every problem trains; 3 problems in batches of 2
  std::string job_id;
  std::string snapshot = dir.Sub("snapshot");
  WeightSet uninterrupted;
  {
    auto learner = Learner::Create(options, nullptr);
    ASSERT_TRUE(learner.ok()) << learner.status();
    auto job = (*learner)->Submit(JobKind::kTrain, "t", NumberedProblems(3), JobOptions{}, "");
    ASSERT_TRUE(job.ok());
    job_id = job->id;
    // Two steps, then copy the state directory as a kill -9 would leave it.
    RunUntilDone(**learner, job_id, 200, /*stop_after_steps=*/2);
    ASSERT_EQ((*learner)->stats().training_steps, 2);
    std::filesystem::copy(options.state_dir, snapshot, std::filesystem::copy_options::recursive);
    const Job done = RunUntilDone(**learner, job_id);
    ASSERT_EQ(done.state, JobState::kSucceeded);
    EXPECT_EQ(done.progress.training_steps, 4);
    uninterrupted = *(*learner)->CurrentWeights();
  }
  // Resume from the snapshot: the job is still running, the learner at step 2.
  LearnerOptions resumed_options = options;
  resumed_options.state_dir = snapshot;
  resumed_options.model = "";  // must come from the checkpoint
  auto resumed = Learner::Create(resumed_options, nullptr);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ((*resumed)->weight_version(), 3);
  EXPECT_EQ((*resumed)->jobs().Get(job_id)->state, JobState::kRunning);
  const Job done = RunUntilDone(**resumed, job_id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.progress.training_steps, 4);
  const WeightSet after = *(*resumed)->CurrentWeights();
  ASSERT_TRUE(after.SameLayout(uninterrupted));
  EXPECT_TRUE(after.payload == uninterrupted.payload)
      << "the resumed run's weights differ from the uninterrupted run's";
}

TEST(LearnerTest, SolveJobsAnswerEveryProblemBesideTraining) {
  ScratchDir dir("learner_solve");
  auto learner = Learner::Create(SmallOptions(dir, "state"), nullptr);
  ASSERT_TRUE(learner.ok()) << learner.status();
  Learner& l = **learner;
  JobOptions options;
  options.samples_per_problem = 4;
  auto job = l.Submit(JobKind::kSolve, "eval", NumberedProblems(3), options, "");
  ASSERT_TRUE(job.ok());
  ASSERT_TRUE(l.Poll().ok());
  std::vector<IssuedLease> leases = ServeLeases(l);
  ASSERT_EQ(leases.size(), 3u);
  for (const IssuedLease& lease : leases) {
    EXPECT_EQ(lease.spec.kind, LeaseKind::kSolve);
    EXPECT_EQ(lease.spec.num_trajectories, 4);
  }
  ASSERT_TRUE(l.Poll().ok());
  const Job done = *l.jobs().Get(job->id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.progress.problems_done, 3);
  EXPECT_EQ(done.progress.problems_solved, 2);  // p0 has no correct trajectory
  ASSERT_EQ(done.results.size(), 3u);
  std::map<std::string, SolveSummary> by_id;
  for (const ProblemResult& r : done.results) by_id[r.problem_id] = r.summary;
  EXPECT_EQ(by_id["p0"].selection, "majority");
  EXPECT_FALSE(by_id["p0"].correct);
  EXPECT_EQ(by_id["p2"].selection, "verified");
  EXPECT_EQ(by_id["p2"].answer, "3");
  EXPECT_EQ(by_id["p2"].correct_samples, 2);
  EXPECT_DOUBLE_EQ(by_id["p2"].pass_at_k.at(1), 0.5);
}

TEST(LearnerTest, CancellingATrainJobDropsItsLeasesAndStartsTheNext) {
  ScratchDir dir("learner_cancel");
  auto learner = Learner::Create(SmallOptions(dir, "state"), nullptr);
  ASSERT_TRUE(learner.ok()) << learner.status();
  Learner& l = **learner;
  auto first = l.Submit(JobKind::kTrain, "first", NumberedProblems(2), JobOptions{}, "");
  auto second = l.Submit(JobKind::kTrain, "second", NumberedProblems(2), JobOptions{}, "");
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE(l.Poll().ok());
  EXPECT_EQ(l.jobs().Get(first->id)->state, JobState::kRunning);
  EXPECT_EQ(l.jobs().Get(second->id)->state, JobState::kPending);  // one TRAIN job at a time
  EXPECT_EQ(l.stats().leases.pending, 2);
  ASSERT_TRUE(l.Cancel(first->id).ok());
  EXPECT_EQ(l.stats().leases.pending, 0);
  ASSERT_TRUE(l.Poll().ok());
  EXPECT_EQ(l.jobs().Get(first->id)->state, JobState::kCancelled);
  EXPECT_EQ(l.jobs().Get(second->id)->state, JobState::kRunning);
  std::vector<IssuedLease> leases = ServeLeases(l);
  ASSERT_EQ(leases.size(), 2u);
  EXPECT_EQ(leases[0].spec.job_id, second->id);
  // Cancelling a finished job is refused.
  EXPECT_EQ(l.Cancel(first->id).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(LearnerTest, AsyncModeLeasesTheNextStepBeforeTrainingAndDropsStaleTrees) {
  ScratchDir dir("learner_async");
  RecordingSink sink;
  LearnerOptions options = SmallOptions(dir, "state");
  options.mode = "async";
  options.max_policy_lag = 1;
  options.program.screen = false;
  options.program.steps_per_round = 3;
  auto learner = Learner::Create(options, &sink);
  ASSERT_TRUE(learner.ok()) << learner.status();
  Learner& l = **learner;
  auto job = l.Submit(JobKind::kTrain, "t", NumberedProblems(2), JobOptions{}, "");
  ASSERT_TRUE(job.ok());
  ASSERT_TRUE(l.Poll().ok());
  std::vector<IssuedLease> step0 = ServeLeases(l);
  ASSERT_EQ(step0.size(), 2u);
  EXPECT_EQ(step0[0].spec.min_weight_version, 1);
  // This poll leases step 1 (on version 1, lag 1 allowed) and then trains step 0.
  ASSERT_TRUE(l.Poll().ok());
  EXPECT_EQ(l.weight_version(), 2);
  std::vector<IssuedLease> step1 = ServeLeases(l, 1000, /*weight_version=*/1);
  ASSERT_EQ(step1.size(), 2u);
  EXPECT_EQ(step1[0].spec.min_weight_version, 1);
  EXPECT_EQ(step1[0].spec.step, 1);
  ASSERT_TRUE(l.Poll().ok());  // trains step 1: lag 2 - 1 = 1, allowed
  EXPECT_EQ(l.weight_version(), 3);
  EXPECT_EQ(l.stats().stale_trees, 0);
  // Step 2's trees claim version 1: lag 3 - 1 = 2 > 1, dropped; nothing to train.
  ServeLeases(l, 1000, /*weight_version=*/1);
  ASSERT_TRUE(l.Poll().ok());
  EXPECT_EQ(l.stats().stale_trees, 2);
  EXPECT_EQ(l.weight_version(), 3);
  EXPECT_THAT(sink.versions(), ElementsAre(1, 2, 3));
}

TEST(LearnerTest, CreateNamesWhatIsMissing) {
  ScratchDir dir("learner_errors");
  LearnerOptions options;
  options.state_dir = dir.Sub("state");
  auto learner = Learner::Create(options, nullptr);
  ASSERT_FALSE(learner.ok());
  EXPECT_THAT(std::string(learner.status().message()), ::testing::HasSubstr("no model directory"));
  options.model = dir.Sub("nowhere");
  learner = Learner::Create(options, nullptr);
  ASSERT_FALSE(learner.ok());
  EXPECT_THAT(std::string(learner.status().message()), ::testing::HasSubstr("nowhere"));
}

}  // namespace
}  // namespace deepsearch
