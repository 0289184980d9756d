// The root of the configuration file every DeepSearch binary reads. Sections join it as their
// components land; `deepsearch config show` prints it with every default and its help text.
#pragma once

#include <string>
#include <vector>

#include "engine/engine_config.h"
#include "search/search_params.h"

#include "actor/actor_options.h"
#include "cache_service/cache_options.h"
#include "common/core/config.h"
#include "common/core/runtime_config.h"
#include "common/rpc/metrics_http.h"
#include "learner/learner_options.h"

namespace deepsearch {

// The `actor` section: the actor's loops, plus the model directory it starts from.
struct ActorSection {
  ActorOptions options;
  std::string model;

  void Bind(ConfigBinder& b);
};

// The `run` section: `deepsearch run`, the whole method on one machine (cli/run_command.cc).
struct RunSection {
  std::string dir = "deepsearch-run";  // everything the run writes; running again resumes
  std::string task = "countdown:n=3";  // the task family of every stage
  std::string preset = "tiny";         // the model trained from scratch
  uint64_t seed = 1;
  int32_t actors = 1;
  int32_t sft_steps = 300;
  int32_t sft_batch = 64;
  int32_t train_problems = 512;
  int32_t heldout_problems = 100;
  int32_t eval_every = 5;
  int32_t eval_direct_samples = 32;
  std::vector<double> eval_temperatures = {1.0};
  int32_t eval_samples = 8;
  bool weights_by_file = true;  // the services share this host: weights travel as files
  absl::Duration status_interval = absl::Seconds(5);
  absl::Duration startup_timeout = absl::Seconds(120);
  absl::Duration stop_timeout = absl::Seconds(60);
  int32_t max_restarts = 3;  // per service

  void Bind(ConfigBinder& b);
};

struct DeepSearchConfig {
  LoggingConfig logging;
  RuntimeConfig runtime;
  RpcConfig rpc;
  rpc::MetricsConfig metrics;
  SearchParams search;
  SamplingConfig sampling;
  EngineConfig engine;
  ActorSection actor;
  LearnerOptions learner;
  CacheOptions cache;
  RunSection run;

  void Bind(ConfigBinder& b);
};

// The config file at `path` with `overrides` (KEY=VALUE) applied; the built-in defaults when
// `path` is empty. What every subcommand's --config and --set mean.
absl::StatusOr<DeepSearchConfig> LoadDeepSearchConfig(const std::string& path,
                                                      const std::vector<std::string>& overrides);

}  // namespace deepsearch
