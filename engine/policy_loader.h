// A policy ready to search: a model directory loaded onto its device, its tokenizer, and the
// inference engine serving it (what `deepsearch actor` and `deepsearch solve` run).
//
//   DS_ASSIGN_OR_RETURN(LoadedPolicy policy, LoadPolicy(dir, config.engine));
//   TreeRunner runner(*policy.engine, *policy.tokenizer);
//
// New weights arrive as weight sets (common/weights/weight_set.h) and are swapped into the
// running engine by InstallWeights.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "engine/engine_config.h"

#include "common/model/model_dir.h"
#include "common/weights/weight_set.h"

namespace deepsearch {

struct LoadedPolicy {
  std::unique_ptr<Tokenizer> tokenizer;
  GenerationConfig generation;
  Qwen2Config config;
  ModelOptions model_options;
  std::unique_ptr<InferenceEngine> engine;
};

// Loads `model_dir` with the engine settings; the engine serves it as `weight_version` (0 for
// weights that were not published by a learner). Stop strings and EOS come from the
// directory's tokenizer and generation config.
absl::StatusOr<LoadedPolicy> LoadPolicy(const std::string& model_dir, const EngineConfig& config,
                                        int64_t weight_version = 0,
                                        MetricsRegistry* metrics = nullptr);

// Imports `set` (same architecture as the loaded model; checked) and swaps it into the engine
// as version set.version.
absl::Status InstallWeights(LoadedPolicy& policy, const WeightSet& set);

}  // namespace deepsearch
