// The learner process's settings (the `learner` section of the config file). Torch- and
// gRPC-free, so the configuration builds everywhere; learner/learner.h runs them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "search/search_params.h"
#include "trainer/trainer_config.h"

#include "common/core/config.h"
#include "learner/data_parallel_config.h"
#include "learner/train_program.h"

namespace deepsearch {

// The `learner` section of the config file.
// sync (the paper): every step's leases want the newest weights, the next step waits for the
// update. async: the next step is leased while the learner trains (learner.h, "Modes").
enum class LearnerMode { kSync, kAsync };
std::string_view LearnerModeName(LearnerMode mode);

struct LearnerOptions {
  std::string state_dir = "deepsearch-state";
  std::string model;  // the model directory training starts from (no checkpoint yet)
  std::string listen_address = "127.0.0.1:50051";
  std::string cache_address;  // host:port of the cache service; empty: weights not published
  // The cache service's weight import directory as this host sees it (cache.weight_import_dir),
  // when the learner shares its file system: versions are then written there and published by
  // reference, not streamed. Empty: streamed.
  std::string cache_import_dir;
  LearnerMode mode = LearnerMode::kSync;
  int32_t max_policy_lag = 1;
  absl::Duration lease_duration = absl::Seconds(120);
  int32_t max_attempts = 3;
  absl::Duration retry_after = absl::Milliseconds(200);  // told to actors when idle
  int32_t checkpoint_every = 10;                         // training steps; 0: only at job end
  int32_t keep_checkpoints = 2;
  std::string publish_dtype = "bfloat16";  // of published weights: float32, bfloat16, float16
  int32_t solve_samples = 8;               // SOLVE jobs: trajectories per problem by default
  int32_t publish_attempts = 5;            // tries per driver pass (it keeps trying)
  absl::Duration publish_timeout = absl::Minutes(5);  // one PublishWeights call
  int32_t max_problems_per_submission = 100000;       // SubmitProblemSet's problems
  int32_t max_watchers_per_job = 16;                  // WatchJob streams open on one job
  // Work waiting with no actor heard from for this long is a stall (status, metrics, log).
  absl::Duration stall_after = absl::Seconds(60);
  TrainProgramConfig program;  // defaults of TRAIN jobs
  TrainerConfig train;
  SearchParams search;      // of leases, unless a job overrides
  SamplingConfig sampling;  // of leases, unless a job overrides
  uint64_t seed = 0;        // seeds of the leases' sampling
  // Training over several learner processes: rank 0 is the learner (it serves, owns the jobs,
  // checkpoints and publishes); the other ranks only train their share of each step.
  DataParallelConfig data_parallel;

  void Bind(ConfigBinder& b);
};

}  // namespace deepsearch
