// Token sampling: temperature, top-k, top-p and a seed, over one step's distribution.
//
// The caller passes log-probabilities of softmax(logits / temperature) restricted to the
// tokenizer's vocabulary (ids at or beyond the tokenizer's size are never sampled). Filters
// apply in the order Hugging Face's samplers use: top-k, then top-p on the renormalised
// remainder (the smallest set of most likely tokens whose mass reaches top_p; at least one
// token). One uniform draw from the sequence's own Rng picks the token by inverse CDF, so a
// seed, a prefix and the weights determine the tokens whatever else is in the batch. Ties in
// probability are broken by the lower token id. top_k = 1 is greedy decoding.
//
// The reported log-prob and entropy of a step are those of softmax(logits / temperature)
// before top-k/top-p truncation: what the learner recomputes from the same logits.
//
// Torch-free; thread-compatible (no shared state).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

#include "common/core/rng.h"

namespace deepsearch {

// Why a sample ended: an EOS id, a stop token, a stop string, or max_new_tokens.
enum class FinishReason { kEos, kStopToken, kStopString, kLength };
std::string_view FinishReasonName(FinishReason reason);

struct SamplingParams {
  float temperature = 1.0f;  // > 0
  float top_p = 1.0f;        // (0, 1]
  int32_t top_k = 0;         // <= 0: off
  uint64_t seed = 0;
  int32_t max_new_tokens = 256;
  // Generation also stops after any of these ids (beyond the model's EOS ids) ...
  std::vector<int32_t> stop_token_ids;
  // ... or once the generated text contains any of these strings.
  std::vector<std::string> stop_strings;

  // Names the offending field.
  absl::Status Validate() const;
};

// Picks a token id from `logprobs` (see the file comment). Requires a non-empty span.
int32_t SampleToken(absl::Span<const float> logprobs, int32_t top_k, float top_p, Rng& rng);

}  // namespace deepsearch
