// deepsearch actor [--config FILE] [--set KEY=VALUE]... [--model DIR] [--learner ADDR]
// [--cache ADDR]: run a search actor until SIGINT or SIGTERM (actor/actor.h).
//
// The model directory gives the tokenizer and the architecture; its weights serve until the
// first version published by the learner arrives through the cache service. On a signal the
// actor stops leasing, lets its trees finish for actor.shutdown_drain, delivers what is done,
// and exits 0.
#include <signal.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "engine/policy_loader.h"

#include "actor/actor.h"
#include "cli/commands.h"
#include "cli/deepsearch_config.h"
#include "cli/service_metrics.h"
#include "cli/signals.h"
#include "common/core/logging.h"
#include "common/model/torch_runtime.h"

namespace deepsearch::cli {
namespace {

struct ActorArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string model;
  std::string learner;
  std::string cache;
  std::string actor_id;
};

int RunActor(const ActorArgs& args) {
  BlockTerminationSignals();  // before any thread starts
  auto fail = [](const absl::Status& s) {
    std::cerr << "deepsearch actor: " << s.message() << "\n";
    return kExitFailure;
  };
  std::vector<std::string> overrides = args.overrides;
  if (!args.model.empty()) overrides.push_back("actor.model=" + args.model);
  if (!args.learner.empty()) overrides.push_back("actor.learner_address=" + args.learner);
  if (!args.cache.empty()) overrides.push_back("actor.cache_address=" + args.cache);
  if (!args.actor_id.empty()) overrides.push_back("actor.actor_id=" + args.actor_id);
  absl::StatusOr<DeepSearchConfig> config = LoadDeepSearchConfig(args.config, overrides);
  if (!config.ok()) return fail(config.status());
  if (config->actor.model.empty())
    return fail(absl::InvalidArgumentError("no model directory (--model or actor.model)"));
  if (config->actor.options.learner_address.empty()) {
    return fail(
        absl::InvalidArgumentError("no learner address (--learner or actor.learner_address)"));
  }
  if (absl::Status s = ConfigureTorchRuntime(config->runtime); !s.ok()) return fail(s);
  absl::StatusOr<LoadedPolicy> policy = LoadPolicy(config->actor.model, config->engine);
  if (!policy.ok()) return fail(policy.status());
  LoadedPolicy& loaded = *policy;
  Actor actor(
      config->actor.options, config->rpc,
      {.policy = loaded.engine.get(),
       .tokenizer = loaded.tokenizer.get(),
       .install_weights = [&loaded](const WeightSet& set) { return InstallWeights(loaded, set); }});
  absl::StatusOr<std::unique_ptr<rpc::MetricsHttpServer>> metrics = rpc::StartMetricsEndpoint(
      config->metrics, config->rpc.tls, "actor", &MetricsRegistry::Default(), [&actor] {
        const ActorStats s = actor.stats();
        SetGauges({
            {"deepsearch_actor_trees_running", "Trees being searched", double(s.trees_running)},
            {"deepsearch_actor_leases_completed", "Leases completed", double(s.leases_completed)},
            {"deepsearch_actor_leases_failed", "Leases failed", double(s.leases_failed)},
            {"deepsearch_actor_cached_problems", "Leases served from cached solutions",
             double(s.cached_problems)},
            {"deepsearch_actor_trajectories_sent", "Trajectories sent",
             double(s.trajectories_sent)},
            {"deepsearch_actor_trajectories_acked", "Trajectories acknowledged",
             double(s.trajectories_acked)},
            {"deepsearch_actor_generated_tokens", "Tokens generated", double(s.generated_tokens)},
            {"deepsearch_actor_weight_version", "Installed weight version",
             double(s.weight_version)},
            {"deepsearch_actor_rpc_failures", "Failed RPCs", double(s.rpc_failures)},
        });
      });
  if (!metrics.ok()) return fail(metrics.status());
  if (absl::Status s = actor.Start(); !s.ok()) return fail(s);
  const int signal = WaitForTerminationSignal();
  log::Info("actor {}: {} received; draining for up to {}", actor.actor_id(),
            signal == SIGTERM ? "SIGTERM" : "SIGINT",
            absl::FormatDuration(config->actor.options.shutdown_drain));
  actor.Shutdown(config->actor.options.shutdown_drain);
  return kExitOk;
}

}  // namespace

void AddActorCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ActorArgs>();
  CLI::App* cmd = app.add_subcommand(
      "actor", "Run a search actor: lease problems, search, stream trajectories");
  cmd->add_option("--config", args->config, "Config file (the actor, engine and rpc sections)");
  cmd->add_option("--set", args->overrides, "Override a config key: KEY=VALUE (repeatable)");
  cmd->add_option("--model", args->model, "Model directory (actor.model)");
  cmd->add_option("--learner", args->learner, "host:port of the learner (actor.learner_address)");
  cmd->add_option("--cache", args->cache, "host:port of the cache service (actor.cache_address)");
  cmd->add_option("--actor-id", args->actor_id, "Name of this actor (actor.actor_id)");
  cmd->callback([args, &exit_code] { exit_code = RunActor(*args); });
}

}  // namespace deepsearch::cli
