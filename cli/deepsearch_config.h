// The root of the configuration file every DeepSearch binary reads. Sections join it as their
// components land; `deepsearch config show` prints it with every default and its help text.
#pragma once

#include "actor/actor_options.h"
#include "actor/engine_config.h"
#include "actor/search_params.h"
#include "cache_service/cache_options.h"
#include "common/core/config.h"
#include "common/core/runtime_config.h"
#include "learner/learner_options.h"

namespace deepsearch {

// The `actor` section: the actor's loops, plus the model directory it starts from.
struct ActorSection {
  ActorOptions options;
  std::string model;

  void Bind(ConfigBinder& b) {
    options.Bind(b);
    b.Field(
        "model", model,
        "Model directory: the tokenizer, the architecture, and the weights served until the first "
        "published version arrives");
  }
};

struct DeepSearchConfig {
  LoggingConfig logging;
  RuntimeConfig runtime;
  RpcConfig rpc;
  SearchParams search;
  SamplingConfig sampling;
  EngineConfig engine;
  ActorSection actor;
  LearnerOptions learner;
  CacheOptions cache;

  void Bind(ConfigBinder& b) {
    b.Section("logging", logging, "Logging");
    b.Section("runtime", runtime, "Process runtime");
    b.Section("rpc", rpc, "gRPC transport and security, shared by every server and client");
    b.Section("search", search,
              "DeepSearch's tree search (DEEPSEARCH_SPEC 1.3-1.6, 3.1); the paper's defaults");
    b.Section("sampling", sampling, "Sampling of rollouts and expansions");
    b.Section("engine", engine, "The inference engine of actors and `deepsearch solve`");
    b.Section("actor", actor, "The search actor process (`deepsearch actor`)");
    b.Section("learner", learner,
              "The learner process (`deepsearch learner`): jobs, leases, Tree-GRPO training, "
              "checkpoints");
    b.Section("cache", cache,
              "The cache service (`deepsearch cache`): verified solutions, weight distribution");
  }
};

}  // namespace deepsearch
