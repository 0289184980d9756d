#include "cli/deepsearch_config.h"

namespace deepsearch {

void ActorSection::Bind(ConfigBinder& b) {
  options.Bind(b);
  b.Field(
      "model", model,
      "Model directory: the tokenizer, the architecture, and the weights served until the first "
      "published version arrives");
}

void RunSection::Bind(ConfigBinder& b) {
  b.Field("dir", dir, "Directory of everything the run writes; running again resumes from it")
      .NonEmpty();
  b.Field("task", task, "Task spec of the warm start, the training and the held-out problems")
      .NonEmpty();
  b.Field("preset", preset, "Model trained from scratch: tiny or small");
  b.Require(preset == "tiny" || preset == "small", "preset", "must be tiny or small");
  b.Field("seed", seed, "Seed of the model, the problem sets and the warm start");
  b.Field("actors", actors, "Search actor processes").Range(1, 64);
  b.Field("sft_steps", sft_steps, "Supervised warm-start steps").Range(0, 1 << 20);
  b.Field("sft_batch", sft_batch, "Worked solutions per warm-start step").Range(1, 1 << 16);
  b.Field("train_problems", train_problems, "Problems of the training set").Range(1, 1 << 24);
  b.Field("heldout_problems", heldout_problems,
          "Held-out problems (the warm start's evaluation set; never trained on)")
      .Range(1, 1 << 20);
  b.Field("eval_every", eval_every, "Training steps between held-out evaluations")
      .Range(1, 1 << 20);
  b.Field("eval_direct_samples", eval_direct_samples,
          "Direct samples per held-out problem (no search; the paper's evaluation of the "
          "policy and the run's headline): pass@1 is their mean share correct, pass@k the "
          "unbiased estimate; 0: no direct evaluation")
      .Range(0, 4096);
  b.Field("eval_temperatures", eval_temperatures,
          "Sampling temperatures of the direct evaluation, one SOLVE job each; the first is "
          "the headline");
  b.Require(eval_direct_samples == 0 || !eval_temperatures.empty(), "eval_temperatures",
            "must name at least one temperature when eval_direct_samples > 0");
  for (double t : eval_temperatures)
    b.Require(t > 0.0 && t <= 10.0, "eval_temperatures", "every temperature must be in (0, 10]");
  b.Field("eval_samples", eval_samples,
          "Leaves of the search tree per held-out problem in the secondary evaluation (the "
          "method's search; pass@1 is the share of correct leaves); 0: no tree evaluation")
      .Range(0, 4096);
  b.Require(eval_direct_samples > 0 || eval_samples > 0, "eval_samples",
            "eval_direct_samples and eval_samples cannot both be 0");
  b.Field("weights_by_file", weights_by_file,
          "The run's services share this host: the learner hands weight versions to the cache "
          "service as files in its import directory and actors map the stored files "
          "(learner.cache_import_dir, actor.weights_by_file); false: streamed over gRPC");
  b.Field("status_interval", status_interval, "Between progress lines and metrics samples")
      .Positive();
  b.Field("startup_timeout", startup_timeout, "For the services to come up").Positive();
  b.Field("stop_timeout", stop_timeout, "For each service to stop before it is killed").Positive();
  b.Field("max_restarts", max_restarts,
          "Restarts of each service that exits (an actor, the learner: it resumes from its "
          "checkpoint, the cache service: from its store) before the run fails")
      .Range(0, 1000);
}

void DeepSearchConfig::Bind(ConfigBinder& b) {
  b.Section("logging", logging, "Logging");
  b.Section("runtime", runtime, "Process runtime");
  b.Section("rpc", rpc, "gRPC transport and security, shared by every server and client");
  b.Section("metrics", metrics,
            "The Prometheus endpoint of the learner, the cache service and the actors");
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
  b.Section("run", run,
            "`deepsearch run`: warm start, cache service, learner and actors on this machine");
}

absl::StatusOr<DeepSearchConfig> LoadDeepSearchConfig(const std::string& path,
                                                      const std::vector<std::string>& overrides) {
  if (path.empty()) return ParseConfigText<DeepSearchConfig>("", "<defaults>", overrides);
  return LoadConfigFile<DeepSearchConfig>(path, overrides);
}

}  // namespace deepsearch
