#include "engine/engine_config.h"

namespace deepsearch {

void EngineConfig::Bind(ConfigBinder& b) {
  b.Field("device", device, "Where the policy runs: cpu, cuda or cuda:N").NonEmpty();
  b.Field("dtype", dtype, "Compute dtype: float32, bfloat16 or float16").NonEmpty();
  b.Field("max_batch", max_batch, "Samples decoding at once").Range(1, 1 << 16);
  b.Field("max_step_tokens", max_step_tokens, "Prefill plus decode tokens per model step")
      .Range(16, 1 << 24);
  b.Field("kv_budget_mb", kv_budget_mb, "Memory of the paged KV cache, MiB").Range(1, 1 << 24);
  b.Field("prefix_cache", prefix_cache, "Reuse the KV of shared prefixes (radix cache)");
  b.Field("abort_on_swap", abort_on_swap,
          "New weights abort requests in flight and restart them (else they finish on the old "
          "weights)");
}

}  // namespace deepsearch
