// Learner::Impl, the learner's private state, shared by its translation units:
//   learner.cc         the public API (Create, Shutdown, the actors' and clients' calls)
//   learner_driver.cc  the driver: jobs, leases, results, the train program, the poll loop
//   learner_step.cc    a training step, its checkpoint and its weight publication
// Not part of the learner's interface; included by those files only.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "trainer/gradient_reducer.h"
#include "trainer/trainer.h"

#include "common/core/logging.h"
#include "common/model/model_dir.h"
#include "learner/checkpoint_store.h"
#include "learner/learner.h"
#include "learner/rank_channel.h"

namespace deepsearch {

// What the leases of a job are for (LeaseSpec.purpose).
inline constexpr char kPurposeScreen[] = "screen";
inline constexpr char kPurposeTrain[] = "train";
inline constexpr char kPurposeSolve[] = "solve";

struct Learner::Impl {
  // A training step's collection: its leases until every tree is in.
  struct Collection {
    int64_t step = 0;  // the program's step index
    std::vector<TrainProgram::StepProblem> problems;
    std::set<std::string> outstanding;  // lease ids
    std::vector<CompletedTree> trees;
    int32_t failed = 0;
  };

  // The running TRAIN job.
  struct TrainRun {
    std::string job_id;
    std::map<std::string, Problem> problems;
    JobOptions options;
    std::optional<TrainProgram> program;
    std::optional<Collection> collecting;
    std::optional<Collection> ready;  // all in, not trained yet
    std::set<std::string> screening;  // outstanding screening lease ids
    std::set<std::string> solved;     // problems with a correct trajectory so far
    int64_t trajectories = 0;
    int64_t generated_tokens = 0;  // every token the job's trees sampled, once
    int64_t screening_tokens = 0;  // the part of generated_tokens spent screening
    int64_t trained_tokens = 0;    // response tokens of the trained batches
    double last_accuracy = 0.0;
    // What the token budget counts: the training steps' generated tokens.
    int64_t BudgetTokens() const { return generated_tokens - screening_tokens; }
  };

  struct SolveRun {
    std::map<std::string, Problem> problems;
    std::set<std::string> outstanding;  // lease ids
  };

  LearnerOptions options;
  WeightSink* sink = nullptr;
  GradientReducer* reducer = nullptr;
  std::unique_ptr<JobStore> jobs;
  std::unique_ptr<LeaseManager> leases;

  // Model files that travel with every checkpoint.
  std::string tokenizer_json;
  GenerationConfig generation;

  // The driver's state; Poll holds drive_mu for its whole run.
  absl::Mutex drive_mu;
  std::unique_ptr<Trainer> trainer ABSL_GUARDED_BY(drive_mu);
  std::optional<TrainRun> train ABSL_GUARDED_BY(drive_mu);
  std::map<std::string, SolveRun> solves ABSL_GUARDED_BY(drive_mu);
  // Restored from a checkpoint, applied when the job's run starts.
  std::optional<RunState::Train> restored_train ABSL_GUARDED_BY(drive_mu);
  // The weight version trained but not yet published; -1 when none. No lease is issued while
  // one waits (actors in sync mode would wait for it forever).
  int64_t unpublished_version ABSL_GUARDED_BY(drive_mu) = -1;
  std::unique_ptr<CheckpointStore> checkpoints;

  // One poll at a time (PollOnce: publishing, then driving). Lock order: poll_mu, drive_mu,
  // the rank channel's, mu. Publishing holds poll_mu but not drive_mu, so checkpoints,
  // CurrentWeights and the driver's state stay reachable while a publish retries.
  absl::Mutex poll_mu;
  // Whether Publish has asked the sink for its newest version (after a restart ours may be
  // behind it).
  bool sink_numbering_checked ABSL_GUARDED_BY(poll_mu) = false;

  mutable absl::Mutex mu;
  absl::CondVar wake;
  int64_t weight_version ABSL_GUARDED_BY(mu) = 0;
  LearnerStats stats ABSL_GUARDED_BY(mu);
  bool stop ABSL_GUARDED_BY(mu) = false;
  bool changed ABSL_GUARDED_BY(mu) = false;
  std::thread driver;
  bool shut_down = false;
  // Set when the data-parallel group broke: the driver stops, no checkpoint is written (the
  // ranks may be mid-step), and the process should exit (failure()).
  absl::Status failure ABSL_GUARDED_BY(mu);

  // Data parallel: rank 0's commands to the other ranks (null with one rank).
  std::unique_ptr<RankChannel> channel;

  // Learner::Create's parts. LoadTrainer: the trainer on the latest checkpoint (setting
  // *version and the restored program) or, with none, on learner.model. StartDataParallel:
  // the rank channel, and every rank's trainer made equal to this one's.
  absl::StatusOr<std::unique_ptr<Trainer>> LoadTrainer(const LearnerOptions& options,
                                                       int64_t* version);
  absl::Status StartDataParallel(Trainer& trainer, const LearnerOptions& options);
  bool DataParallel() const { return reducer != nullptr && reducer->world_size() > 1; }
  void Fail(const absl::Status& status) {
    absl::MutexLock lock(&mu);
    if (failure.ok()) {
      failure = status;
      log::Error("learner: stopping: {}", status.message());
    }
    stop = true;
    wake.Signal();
    if (channel != nullptr) channel->StopHeartbeat();
  }
  int64_t Version() const {
    absl::MutexLock lock(&mu);
    return weight_version;
  }
  absl::Status failure_status() const {
    absl::MutexLock lock(&mu);
    return failure;
  }
  void Wake() {
    absl::MutexLock lock(&mu);
    changed = true;
    wake.Signal();
  }

  // --- Driver --------------------------------------------------------------------------------

  // One round of the driver: publishes what waits, then drives (PollLocked) until no new
  // version waits to be published.
  absl::Status PollOnce() ABSL_LOCKS_EXCLUDED(poll_mu, drive_mu);
  absl::Status PollLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  // Publishes unpublished_version, exported under drive_mu and sent without it.
  absl::Status PublishPending() ABSL_EXCLUSIVE_LOCKS_REQUIRED(poll_mu)
      ABSL_LOCKS_EXCLUDED(drive_mu);
  // Sends `set` to the sink with retries; renumbers it (and the learner's version) when the
  // sink's numbering is ahead of ours.
  absl::Status Publish(WeightSet& set) ABSL_EXCLUSIVE_LOCKS_REQUIRED(poll_mu);
  absl::Status StartJobsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  absl::Status StartTrainRunLocked(const Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  // Completed trees and leases failed for good, to their solve job or training run; then the
  // solve jobs with nothing outstanding succeed.
  void RouteResultsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  void RouteCompletedLocked(CompletedTree& tree) ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  void RouteFailedLocked(const FailedLease& failed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  void FinishSolvesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  absl::Status AdvanceTrainLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  // AdvanceTrainLocked's parts. CloseCollectionLocked: a complete collection becomes the
  // ready step (async: the program moves on and the next step is leased at once).
  // TrainStepLocked: trains the ready step, marks it done and checkpoints; false when the
  // driver stops here (the job failed, or the new version waits to be published).
  void CloseCollectionLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  absl::StatusOr<bool> TrainStepLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  void IssueCollectionLocked(Collection collection) ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  absl::Status TrainReadyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  absl::Status CheckpointLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  void FinishTrainLocked(JobState state, const std::string& error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  void UpdateTrainProgressLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);

  LeaseSpec BaseSpec(const std::string& job_id, const JobOptions& job_options,
                     const Problem& problem, LeaseKind kind, int32_t trajectories,
                     std::string_view purpose, int64_t step) const;
  int64_t MinWeightVersion() const;

  void DriverLoop();
  void WatchActors();
  bool stalled = false;  // WatchActors' last verdict; the driver thread's own
};

}  // namespace deepsearch
