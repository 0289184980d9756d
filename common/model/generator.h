// Batched sampling from the Qwen2 model with a KV cache: many prompts of different lengths,
// n samples each, every sample with its own seed-derived stream.
//
// Each request's prompt is prefilled once; its n samples are forks of that KV (the prefix is
// never recomputed). All live samples decode together, one token per step; a sample leaves
// the batch as soon as it stops (continuous batching), and waiting requests join when there
// is room under `max_batch`. Positions are each sequence's own (no left padding).
//
// For every sampled token the result carries its log-prob and the entropy of the full
// distribution, both under softmax(logits / temperature) over the tokenizer's vocabulary
// (see sampler.h). A sample stops at an EOS id (kept as its last token), a stop token (kept),
// a stop string (the text up to and including the token that completed it is kept), or
// max_new_tokens.
//
// Determinism: sample j of a request draws from Rng(seed).Fork(j), so its tokens do not
// depend on what else is in the batch (up to floating-point ties of the logits).
//
// Threading: Generate blocks and is not thread-safe; the model must not change meanwhile.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

#include "common/model/qwen2_model.h"
#include "common/model/token_sampling.h"
#include "common/sampling/sampler.h"

namespace deepsearch {

struct GenerationRequest {
  std::vector<int32_t> prompt;
  int32_t num_samples = 1;
  SamplingParams sampling;
};

struct GeneratedSample {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;   // log pi(token) per generated token
  std::vector<float> entropies;  // entropy of the step's full distribution, in nats
  FinishReason finish = FinishReason::kLength;
};

struct GeneratorOptions {
  // Ids that end a sample (the model's EOS set, from generation_config.json).
  std::vector<int32_t> eos_token_ids = {};
  // Sample only ids below this (the tokenizer's size); 0: the model's vocab_size.
  int64_t vocab_limit = 0;
  // The bytes a token adds to the text; needed only for stop strings.
  std::function<std::string(int32_t)> token_bytes = nullptr;
  // Most samples decoding at once.
  int32_t max_batch = 256;
};

class Generator {
 public:
  Generator(const Qwen2Model& model, GeneratorOptions options);

  // result[i][j] is sample j of requests[i]. Errors name the request and field at fault.
  absl::StatusOr<std::vector<std::vector<GeneratedSample>>> Generate(
      absl::Span<const GenerationRequest> requests);

 private:
  const Qwen2Model& model_;
  GeneratorOptions options_;
};

}  // namespace deepsearch
