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
using testing_learner::kTreeTokens;
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
  // Tokens: each tree's sampled tokens once (4 screening trees, 2 x 2 training trees); the
  // trained ones are the 16 training trajectories' responses of 3 to 6 tokens.
  EXPECT_EQ(done.progress.generated_tokens, 8 * kTreeTokens);
  EXPECT_EQ(done.progress.screening_tokens, 4 * kTreeTokens);
  EXPECT_GE(done.progress.trained_tokens, 16 * 3);
  EXPECT_LE(done.progress.trained_tokens, 16 * 6);
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
  options.algorithm = Algorithm::kGrpo;
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

// The token budget counts the training steps' generated tokens, each once, not screening.
TEST(LearnerTest, TheTokenBudgetCountsTheTrainingStepsGeneratedTokens) {
  ScratchDir dir("learner_budget");
  LearnerOptions options = SmallOptions(dir, "state");
  // Each step: 2 trees of kTreeTokens; screening (4 trees) must not count.
  options.program.max_generated_tokens = 2 * kTreeTokens + 1;
  options.program.steps_per_round = 4;  // without the budget the job would go on
  options.program.max_rounds = 5;
  auto learner = Learner::Create(options, nullptr);
  ASSERT_TRUE(learner.ok()) << learner.status();
  auto job = (*learner)->Submit(JobKind::kTrain, "t", NumberedProblems(4), JobOptions{}, "");
  ASSERT_TRUE(job.ok());
  const Job done = RunUntilDone(**learner, job->id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  // 100 tokens after step 1, 200 after step 2 (counting the 200 of screening would stop it
  // after step 1).
  EXPECT_EQ(done.progress.training_steps, 2);
  EXPECT_EQ(done.progress.generated_tokens - done.progress.screening_tokens, 4 * kTreeTokens);
}

// Submits a SOLVE job of p0..p2 to a fresh learner, serves its leases once and returns the
// finished job; `leases` receives what was leased.
Job SolveOnce(const std::string& name, const JobOptions& options,
              std::vector<IssuedLease>& leases) {
  ScratchDir dir(name);
  auto learner = Learner::Create(SmallOptions(dir, "state"), nullptr);
  EXPECT_TRUE(learner.ok()) << learner.status();
  if (!learner.ok()) return Job{};
  Learner& l = **learner;
  auto job = l.Submit(JobKind::kSolve, "eval", NumberedProblems(3), options, "");
  EXPECT_TRUE(job.ok());
  if (!job.ok()) return Job{};
  EXPECT_TRUE(l.Poll().ok());
  leases = ServeLeases(l);
  EXPECT_TRUE(l.Poll().ok());
  return *l.jobs().Get(job->id);
}

TEST(LearnerTest, SolveJobsInRolloutModeLeaseDirectSamples) {
  JobOptions options;
  options.samples_per_problem = 5;
  options.solve_mode = JobOptions::SolveMode::kRollout;
  std::vector<IssuedLease> leases;
  const Job done = SolveOnce("learner_solve_rollout", options, leases);
  ASSERT_EQ(leases.size(), 3u);
  for (const IssuedLease& lease : leases) {
    EXPECT_EQ(lease.spec.kind, LeaseKind::kRollout);
    EXPECT_EQ(lease.spec.num_trajectories, 5);
    EXPECT_FALSE(lease.spec.use_solution_cache);
  }
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.progress.generated_tokens, 3 * kTreeTokens);
  std::map<std::string, SolveSummary> by_id;
  for (const ProblemResult& r : done.results) by_id[r.problem_id] = r.summary;
  EXPECT_EQ(by_id["p2"].samples, 5);
  EXPECT_EQ(by_id["p2"].correct_samples, 2);
  // The mode survives the job store.
  EXPECT_EQ(done.options.solve_mode, JobOptions::SolveMode::kRollout);
}

TEST(LearnerTest, SolveJobsAnswerEveryProblemBesideTraining) {
  JobOptions options;
  options.samples_per_problem = 4;
  std::vector<IssuedLease> leases;
  const Job done = SolveOnce("learner_solve", options, leases);
  ASSERT_EQ(leases.size(), 3u);
  for (const IssuedLease& lease : leases) {
    EXPECT_EQ(lease.spec.kind, LeaseKind::kSolve);
    EXPECT_EQ(lease.spec.num_trajectories, 4);
  }
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
  options.mode = LearnerMode::kAsync;
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

// One round of three steps on two problems, no screening: the jobs of the restart tests.
LearnerOptions ThreeStepOptions(const ScratchDir& dir) {
  LearnerOptions options = SmallOptions(dir, "state");
  options.program.screen = false;
  options.program.steps_per_round = 3;
  return options;
}

// Submits their TRAIN job (p0, p1); returns its id.
std::string SubmitTwoProblems(Learner& learner) {
  absl::StatusOr<Job> job =
      learner.Submit(JobKind::kTrain, "t", NumberedProblems(2), JobOptions{}, "");
  EXPECT_TRUE(job.ok()) << job.status();
  return job.ok() ? job->id : "";
}

// Serves the job to its end; it must succeed with its three steps.
void ExpectThreeStepsDone(Learner& learner, const std::string& job_id) {
  const Job done = RunUntilDone(learner, job_id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.progress.training_steps, 3);
}

// A step whose weight version cannot be published (the cache service is down) is still
// done: the learner holds the next step back, says what it waits for (stats, the job's
// phase), and goes on as soon as the sink takes the version.
TEST(LearnerTest, AFailedPublishHoldsTheNextStepBackUntilTheSinkIsBack) {
  ScratchDir dir("learner_publish_down");
  RecordingSink sink;
  LearnerOptions options = ThreeStepOptions(dir);
  options.publish_attempts = 2;
  auto learner = Learner::Create(options, &sink);
  ASSERT_TRUE(learner.ok()) << learner.status();
  Learner& l = **learner;
  const std::string job_id = SubmitTwoProblems(l);
  ASSERT_TRUE(l.Poll().ok());
  ASSERT_EQ(ServeLeases(l).size(), 2u);  // step 0
  sink.SetDown(true);
  const absl::Status polled = l.Poll();  // trains step 0; version 2 cannot go out
  EXPECT_EQ(polled.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(polled.message()),
              ::testing::HasSubstr("cannot publish weight version 2"));
  EXPECT_EQ(l.stats().training_steps, 1);
  EXPECT_EQ(l.stats().unpublished_version, 2);
  EXPECT_THAT(l.stats().waiting_for, ::testing::HasSubstr("publishing weight version 2"));
  EXPECT_THAT(l.jobs().Get(job_id)->progress.phase,
              ::testing::HasSubstr("(waiting: publishing weight version 2"));
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(l.Poll().ok());
    EXPECT_TRUE(ServeLeases(l).empty()) << "a lease went out before version 2 was published";
  }
  sink.SetDown(false);
  ASSERT_TRUE(l.Poll().ok());
  EXPECT_EQ(l.stats().unpublished_version, 0);
  EXPECT_EQ(l.stats().waiting_for, "");
  std::vector<IssuedLease> step1 = ServeLeases(l);
  ASSERT_EQ(step1.size(), 2u);
  EXPECT_EQ(step1[0].spec.step, 1);
  EXPECT_EQ(step1[0].spec.min_weight_version, 2);
  ExpectThreeStepsDone(l, job_id);
  EXPECT_THAT(sink.versions(), ElementsAre(1, 2, 3, 4));
}

// The same outage ending in a restart: the checkpoint of a learner stopped while it waited
// resumes the job, which publishes and completes.
TEST(LearnerTest, ALearnerStoppedWhileAPublishWaitsResumesAndCompletes) {
  ScratchDir dir("learner_publish_restart");
  RecordingSink sink;
  LearnerOptions options = ThreeStepOptions(dir);
  options.publish_attempts = 1;
  std::string job_id;
  {
    auto learner = Learner::Create(options, &sink);
    ASSERT_TRUE(learner.ok()) << learner.status();
    job_id = SubmitTwoProblems(**learner);
    ASSERT_TRUE((*learner)->Poll().ok());
    ServeLeases(**learner);
    sink.SetDown(true);
    EXPECT_FALSE((*learner)->Poll().ok());
    ASSERT_TRUE((*learner)->Shutdown().ok());  // checkpoints step 1
  }
  sink.SetDown(false);
  options.model = "";
  auto resumed = Learner::Create(options, &sink);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ((*resumed)->weight_version(), 2);
  ExpectThreeStepsDone(**resumed, job_id);
  EXPECT_THAT(sink.versions(), ElementsAre(1, 2, 3, 4));
}

// A learner killed after it published versions its last checkpoint does not have resumes
// from the checkpoint and numbers its weights after the sink's newest: versions stay unique
// and increasing, and the resumed weights are what actors take next.
TEST(LearnerTest, AResumedLearnerNumbersItsWeightsAfterTheSinksNewestVersion) {
  ScratchDir dir("learner_renumber");
  RecordingSink sink;
  LearnerOptions options = ThreeStepOptions(dir);
  std::string job_id;
  {
    auto learner = Learner::Create(options, &sink);
    ASSERT_TRUE(learner.ok()) << learner.status();
    job_id = SubmitTwoProblems(**learner);
    RunUntilDone(**learner, job_id, 200, /*stop_after_steps=*/1);
    ASSERT_EQ((*learner)->weight_version(), 2);
  }  // checkpointed at step 1, version 2
  // Steps the crash lost had published versions 3 and 4.
  sink.StoreForeign(3);
  sink.StoreForeign(4);
  options.model = "";
  auto resumed = Learner::Create(options, &sink);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ((*resumed)->weight_version(), 5);  // the checkpoint's weights, numbered anew
  LeaseWorkResult work = (*resumed)->LeaseWork("a", 0, absl::Now());
  EXPECT_EQ(work.latest_weight_version, 5);
  ExpectThreeStepsDone(**resumed, job_id);
  EXPECT_THAT(sink.versions(), ElementsAre(1, 2, 3, 4, 5, 6, 7));

  // A version taken by other weights at publish time (a sink that moved on meanwhile): the
  // next free number.
  sink.StoreForeign(8);
  resumed->reset();
  auto again = Learner::Create(options, &sink);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->weight_version(), 9);
}

// A checkpoint written with a step in flight and no leases to re-issue (what a learner
// stalled by the old publish order left behind) resumes and trains the next step.
TEST(LearnerTest, ACheckpointWithAStepInFlightAndNoLeasesResumes) {
  ScratchDir dir("learner_in_flight");
  LearnerOptions options = ThreeStepOptions(dir);
  std::string job_id;
  {
    auto learner = Learner::Create(options, nullptr);
    ASSERT_TRUE(learner.ok()) << learner.status();
    job_id = SubmitTwoProblems(**learner);
    RunUntilDone(**learner, job_id, 200, /*stop_after_steps=*/1);
  }
  const std::string checkpoint = LatestCheckpoint(dir.Sub("state"));
  nlohmann::json state = ReadLearnerState(checkpoint);
  nlohmann::json program = nlohmann::json::parse(state["train"]["program"].get<std::string>());
  program["step_in_flight"] = true;
  state["train"]["program"] = program.dump();
  state["train"].erase("collecting");
  ASSERT_TRUE(WriteFileAtomically(checkpoint + "/learner.json", state.dump(2)).ok());
  options.model = "";
  auto resumed = Learner::Create(options, nullptr);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  ExpectThreeStepsDone(**resumed, job_id);
}

TEST(LearnerTest, SubmitRefusesAnUnknownTask) {
  ScratchDir dir("learner_bad_task");
  auto learner = Learner::Create(SmallOptions(dir, "state"), nullptr);
  ASSERT_TRUE(learner.ok()) << learner.status();
  std::vector<Problem> problems = NumberedProblems(3);
  problems[2].task = "nosuchtask";
  absl::StatusOr<Job> job = (*learner)->Submit(JobKind::kSolve, "s", problems, JobOptions{}, "");
  ASSERT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(job.status().message()),
              ::testing::HasSubstr("problem p2: task 'nosuchtask': unknown task 'nosuchtask'"));
  EXPECT_TRUE((*learner)->jobs().Active().empty());
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
