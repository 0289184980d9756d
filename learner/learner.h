// The learner: owns the training state and turns leased work into training steps
// (ARCHITECTURE §3-§4, DEEPSEARCH_SPEC §1.2 and §2).
//
//   Learner::Create(options, sink)      loads the latest checkpoint of state_dir, or the
//                                       initial model; publishes the current weights
//   learner->Start()                    the driver thread
//   LeaseWork / Renew / Ingest          what actors call (through learner_service.cc)
//   Submit / Cancel / jobs()            what clients call (through problem_service.cc)
//   learner->Shutdown()                 stops the driver, writes a final checkpoint
//
// The driver runs one TRAIN job at a time (the oldest; the others wait as PENDING) and any
// number of SOLVE jobs beside it:
//   screening  one ROLLOUT lease of screen_samples samples per problem of the job's current
//              set (TrainProgram);
//   training   a step's problems as SEARCH leases (ROLLOUT for grpo), replay-buffer problems
//              with use_solution_cache; when every tree of the step is in (failed leases
//              drop out of the step), the trainer takes one Tree-GRPO step on the trees'
//              trajectories, the weight version is bumped and the new weights go to the sink;
//   solving    one SOLVE lease per problem; the job's result per problem is chosen from the
//              tree's trajectories (verified answer, else majority).
//
// Modes. sync (the paper): a step's leases require the current weight version
// (min_weight_version), and the next step is leased only after the update. async: the next
// step is leased as soon as the current step's trees are in, so actors search while the
// learner trains; leases accept weights up to max_policy_lag versions old, trees older than
// that when they reach the trainer are dropped, and the loss is decoupled PPO (behaviour
// log-probs weight each token, the proximal policy anchors the clip).
//
// Checkpoints (every checkpoint_every steps, at the end of a job, and on Shutdown) hold the
// trainer (model, AdamW moments, counters), the weight version, the train job's program
// (round, hard subset, replay buffer, shuffle position) and the learner's own counters;
// jobs live in state_dir/jobs (JobStore) and are durable on their own. A checkpoint
// directory is written under a temporary name, synced and renamed, then `LATEST` is
// replaced atomically: a crash leaves the previous checkpoint whole. Trajectories in flight
// are not checkpointed: after a restart the unfinished step is leased again.
//
// Ingestion: an ack means the trajectories are held by the lease manager, in memory; a
// learner crash loses the step in progress, which is collected again after restart.
//
// Thread-safe: the gRPC adapters call in from many threads; training runs on the driver.
// Torch stays out of this header.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "common/weights/weight_set.h"
#include "learner/checkpoint_store.h"
#include "learner/job_store.h"
#include "learner/learner_options.h"
#include "learner/lease_manager.h"

namespace deepsearch {

class GradientReducer;

// Where new weight versions go (the cache service's PublishWeights, in production).
class WeightSink {
 public:
  virtual ~WeightSink() = default;
  // Blocks until the version is stored. AlreadyExists for a version published before with
  // the same weights (a restart republishing) counts as success to the learner.
  virtual absl::Status Publish(const WeightSet& weights) = 0;
  // The newest version the sink holds (0: none). A learner that resumes from a checkpoint
  // older than what it published before a crash numbers its weights after it, so versions
  // stay unique and increasing and actors take the resumed learner's weights.
  virtual absl::StatusOr<int64_t> LatestVersion() = 0;
};

struct LeaseWorkResult {
  std::vector<IssuedLease> leases;
  int64_t latest_weight_version = 0;
  absl::Duration retry_after;  // when `leases` is empty
};

// One delivery from an actor (a TrajectoryBatch, converted).
struct IngestRequest {
  std::string actor_id;
  std::vector<TrajectoryRecord> trajectories;
  std::vector<std::string> completed_lease_ids;
  std::vector<std::pair<std::string, std::string>> failed_leases;  // lease id, reason
};

struct LearnerStats {
  int64_t weight_version = 0;
  int64_t training_steps = 0;  // trainer steps taken
  int64_t trajectories = 0;    // ingested (accepted)
  int64_t duplicates = 0;
  int64_t rejected = 0;
  int64_t stale_trees = 0;       // dropped by max_policy_lag
  int64_t generated_tokens = 0;  // sampled by the actors, each token once
  int64_t checkpoints = 0;
  // The last training step's groups (trees) with no correct trajectory, as a share of its
  // groups, and the mean advantage over their tokens (trainer/train_batch.h GroupSummary).
  double all_wrong_group_share = 0.0;
  double all_wrong_mean_advantage = 0.0;
  LeaseCounts leases;
  // The weight version that waits to be published (0: none) and why it is not out yet; no
  // training lease is issued meanwhile (actors would wait for it).
  int64_t unpublished_version = 0;
  std::string waiting_for;
  // Seconds since any actor last asked for work or delivered, while leases wait or are out
  // and that silence has lasted learner.stall_after; 0 otherwise. The leases keep their
  // deadlines meanwhile: issued ones expire and wait to be issued again.
  double stalled_seconds = 0.0;
};

class Learner {
 public:
  // Opens state_dir (jobs, checkpoints), loads the latest checkpoint or options.model, and
  // publishes the current weights to `sink` (may be null: nothing is published; a sink that
  // is not reachable yet is retried by the driver, and no work is leased meanwhile). `reducer`
  // (may be null) makes training data parallel: this is rank 0 (it serves, checkpoints and
  // publishes), the other ranks run RunTrainingWorker; Create hands them the model and the
  // optimizer state, and every step's batch goes to every rank.
  static absl::StatusOr<std::unique_ptr<Learner>> Create(LearnerOptions options, WeightSink* sink,
                                                         GradientReducer* reducer = nullptr);
  ~Learner();
  Learner(const Learner&) = delete;
  Learner& operator=(const Learner&) = delete;

  // Starts the driver thread.
  void Start();
  // Stops the driver (a training step in progress finishes), then checkpoints the train job
  // between steps, and with data parallelism tells the other ranks to stop. Idempotent.
  // Returns failure() instead, without a checkpoint, when the learner failed.
  absl::Status Shutdown();
  // OK while the learner runs; the reason once it stopped for good (the data-parallel group
  // broke: the ranks may be mid-step, so the process should exit and resume from the last
  // checkpoint).
  absl::Status failure() const;

  // Actors.
  LeaseWorkResult LeaseWork(const std::string& actor_id, int32_t max_leases, absl::Time now);
  std::vector<LeaseRenewal> Renew(const std::string& actor_id,
                                  const std::vector<std::string>& lease_ids, absl::Time now);
  std::vector<IngestResult> Ingest(IngestRequest request);

  // Clients.
  absl::StatusOr<Job> Submit(JobKind kind, std::string name, std::vector<Problem> problems,
                             JobOptions options, std::string client_request_id);
  absl::StatusOr<Job> Cancel(const std::string& job_id);
  JobStore& jobs();

  // Runs the driver's work once without waiting (for tests driving the learner by hand):
  // issues what is due, takes completed trees, trains a step that is complete.
  absl::Status Poll();
  // Writes a checkpoint now (between steps). For tests and the final checkpoint.
  absl::Status Checkpoint();

  int64_t weight_version() const;
  LearnerStats stats() const;
  const LearnerOptions& options() const;
  // The trainer's model as a weight set (float32), e.g. to compare runs in tests.
  absl::StatusOr<WeightSet> CurrentWeights() const;

 private:
  struct Impl;
  explicit Learner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A data-parallel rank other than 0 (options.data_parallel; `reducer` joined to the group):
// builds rank 0's model, takes its weights and optimizer state, then trains its share of
// every step rank 0 hands out (Trainer::Step with the same batch on every rank) until rank 0
// stops the run: OK then. It serves nothing, writes nothing and needs no model directory.
// Errors (the group breaks, rank 0 goes away, the settings differ from rank 0's) name the
// rank; the process should exit non-zero, and the group is restarted as a whole.
absl::Status RunTrainingWorker(const LearnerOptions& options, GradientReducer& reducer);

// Writes the checkpoint's model as a Hugging Face model directory in `dtype` ("float32",
// "bfloat16", "float16"). Errors name the checkpoint file that is missing or bad.
absl::Status ExportCheckpoint(const std::string& checkpoint_dir, const std::string& out_dir,
                              const std::string& dtype);

}  // namespace deepsearch
