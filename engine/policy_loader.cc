#include "engine/policy_loader.h"

#include "absl/strings/str_cat.h"

#include "common/core/status.h"
#include "common/model/weight_export.h"

namespace deepsearch {

absl::StatusOr<LoadedPolicy> LoadPolicy(const std::string& model_dir, const EngineConfig& config,
                                        int64_t weight_version, MetricsRegistry* metrics) {
  ModelOptions options;
  absl::StatusOr<at::ScalarType> dtype = ParseModelDtype(config.dtype);
  if (!dtype.ok()) return Annotate(dtype.status(), "engine.dtype");
  absl::StatusOr<at::Device> device = ParseDevice(config.device);
  if (!device.ok()) return Annotate(device.status(), "engine.device");
  options.dtype = *dtype;
  options.device = *device;
  DS_ASSIGN_OR_RETURN(LoadedModel loaded, LoadModelDirectory(model_dir, options));
  LoadedPolicy policy;
  policy.tokenizer = std::move(loaded.tokenizer);
  policy.generation = loaded.generation;
  policy.config = loaded.config;
  policy.model_options = options;
  EngineOptions engine;
  engine.max_batch = config.max_batch;
  engine.max_step_tokens = config.max_step_tokens;
  engine.kv_budget_bytes = config.kv_budget_mb << 20;
  engine.prefix_cache = config.prefix_cache;
  engine.swap_policy =
      config.abort_on_swap ? SwapPolicy::kAbortInFlight : SwapPolicy::kFinishInFlight;
  for (int32_t id : loaded.generation.eos_token_ids) engine.eos_token_ids.push_back(id);
  if (engine.eos_token_ids.empty()) {
    for (int64_t id : loaded.config.eos_token_ids)
      engine.eos_token_ids.push_back(static_cast<int32_t>(id));
  }
  engine.vocab_limit = policy.tokenizer->vocab_size();
  const Tokenizer* tokenizer = policy.tokenizer.get();
  engine.token_bytes = [tokenizer](int32_t id) { return tokenizer->TokenBytes(id); };
  engine.metrics = metrics;
  absl::StatusOr<std::unique_ptr<InferenceEngine>> created =
      InferenceEngine::Create(std::move(loaded.model), weight_version, std::move(engine));
  if (!created.ok()) return Annotate(created.status(), absl::StrCat("engine for ", model_dir));
  policy.engine = *std::move(created);
  return policy;
}

absl::Status InstallWeights(LoadedPolicy& policy, const WeightSet& set) {
  DS_RETURN_IF_ERROR(CheckSameArchitecture(set, policy.config));
  DS_ASSIGN_OR_RETURN(std::unique_ptr<Qwen2Model> model, ImportWeights(set, policy.model_options));
  return policy.engine->SwapWeights(std::move(model), set.version);
}

}  // namespace deepsearch
