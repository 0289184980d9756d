// The inference engine's settings as they appear in config files (the `engine` section of
// an actor, of `deepsearch solve`, ...). Torch-free; engine/policy_loader.h turns them into
// a running engine.
#pragma once

#include <cstdint>
#include <string>

#include "common/core/config.h"

namespace deepsearch {

struct EngineConfig {
  std::string device = "cpu";      // "cpu", "cuda", "cuda:1"
  std::string dtype = "float32";   // compute dtype: float32, bfloat16, float16
  int32_t max_batch = 256;         // samples decoding at once
  int64_t max_step_tokens = 2048;  // prefill + decode tokens per model step
  int64_t kv_budget_mb = 256;      // the KV pool
  bool prefix_cache = true;
  bool abort_on_swap =
      false;  // a weight swap aborts in-flight requests (else they finish on old weights)

  void Bind(ConfigBinder& b);
};

}  // namespace deepsearch
