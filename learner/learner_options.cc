#include "learner/learner_options.h"

namespace deepsearch {

std::string_view LearnerModeName(LearnerMode mode) {
  return mode == LearnerMode::kAsync ? "async" : "sync";
}

void LearnerOptions::Bind(ConfigBinder& b) {
  b.Field("state_dir", state_dir, "Directory of the learner's durable state: jobs, checkpoints")
      .NonEmpty();
  b.Field("model", model, "Model directory training starts from when there is no checkpoint");
  b.Field("listen_address", listen_address, "host:port the learner serves on").NonEmpty();
  b.Field("cache_address", cache_address,
          "host:port of the cache service new weights are published to (empty: none)");
  b.Field("cache_import_dir", cache_import_dir,
          "The cache service's weight import directory (cache.weight_import_dir) when this "
          "host shares its file system: each version is written there and published by "
          "reference instead of streamed (empty: streamed)");
  b.Enum("mode", mode, {{"sync", LearnerMode::kSync}, {"async", LearnerMode::kAsync}},
         "sync (the paper: every step on the newest weights) or async");
  b.Field("max_policy_lag", max_policy_lag,
          "async: trees generated more than this many versions ago are dropped")
      .Range(1, 1000);
  b.Field("lease_duration", lease_duration, "Lease deadline; actors renew before it passes")
      .Positive();
  b.Field("max_attempts", max_attempts, "Issues of a lease before it counts as failed")
      .Range(1, 100);
  b.Field("retry_after", retry_after, "Told to actors asking for work when there is none")
      .Positive();
  b.Field("checkpoint_every", checkpoint_every,
          "Training steps between checkpoints (0: at the end of a job and on shutdown only)")
      .Min(0);
  b.Field("keep_checkpoints", keep_checkpoints, "Checkpoints kept on disk").Range(1, 1000);
  b.Field("publish_dtype", publish_dtype, "dtype of published weights");
  b.Require(publish_dtype == "float32" || publish_dtype == "bfloat16" || publish_dtype == "float16",
            "publish_dtype", "must be float32, bfloat16 or float16");
  b.Field("solve_samples", solve_samples, "SOLVE jobs: trajectories per problem by default")
      .Range(1, 4096);
  b.Field("publish_attempts", publish_attempts,
          "Tries to publish a version per driver pass (the driver keeps trying; no training "
          "lease is issued until the version is out)")
      .Range(1, 1000);
  b.Field("publish_timeout", publish_timeout, "Deadline of one PublishWeights call").Positive();
  b.Field("max_problems_per_submission", max_problems_per_submission,
          "Problems one SubmitProblemSet call may carry")
      .Positive();
  b.Field("max_watchers_per_job", max_watchers_per_job,
          "WatchJob streams open on one job at once; 0: no limit")
      .Min(0);
  b.Field("stall_after", stall_after,
          "Leases waiting with no actor heard from for this long are reported as a stall")
      .Positive();
  b.Field("seed", seed, "Seed of the leases' sampling");
  b.Section("program", program, "TRAIN jobs: hard-subset screening, rounds and replay");
  b.Section("train", train, "The Tree-GRPO update: AdamW, batching, the loss");
  b.Section("data_parallel", data_parallel,
            "Data-parallel training over learner processes (torch c10d; rank 0 serves and "
            "publishes, every rank trains its share of each step)");
}

}  // namespace deepsearch
