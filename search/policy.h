// The narrow, batched policy interface the tree search is written against (the search never
// sees the model, torch or the engine; lc0's BackendComputation and OpenSpiel's Evaluator
// play the same role).
//
// One call asks for `num_samples` continuations of one prefix, each at most
// sampling.max_new_tokens tokens, with the stop rules and the seed of `sampling`. Sample j
// draws from the stream Rng(seed).Fork(j), so the same request on the same weights gives the
// same samples whatever else the engine is running. Every sampled token comes with its
// log-probability and the entropy of its step's distribution (both under softmax(logits /
// temperature), see common/sampling/sampler.h), and every sample with the weight version that
// produced it.
//
// The prefix is given as tokens, or as the handle of an earlier sample (which names that
// sample's prefix plus its tokens) followed by more tokens: a search node's child is
// expanded by sending just the child's handle. Handles stay valid until released.
//
// Threading: Submit and ReleaseHandle are thread-safe and do not block; many tree workers
// submit concurrently. `done` runs exactly once per request, on an implementation thread
// (the engine's loop), and must not block.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"

#include "common/sampling/sampler.h"

namespace deepsearch {

struct ExpansionRequest {
  // The prefix is the tokens named by prefix_handle (0: none) followed by `tokens`.
  int64_t prefix_handle = 0;
  std::vector<int32_t> tokens;
  int32_t num_samples = 1;
  SamplingParams sampling;
  // Serve only with weights at least this new (0: any).
  int64_t min_weight_version = 0;
};

struct PolicySample {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  std::vector<float> entropies;
  FinishReason finish = FinishReason::kLength;
  int64_t weight_version = 0;
  // Names prefix + tokens for later requests (0 when the implementation keeps no handles).
  int64_t handle = 0;
};

struct ExpansionResult {
  absl::Status status;
  // The prefix length in tokens, and the samples (num_samples of them when status is OK).
  int64_t prefix_length = 0;
  std::vector<PolicySample> samples;
};

using ExpansionCallback = std::function<void(ExpansionResult)>;

class Policy {
 public:
  virtual ~Policy() = default;
  virtual void Submit(ExpansionRequest request, ExpansionCallback done) = 0;
  virtual void ReleaseHandle(int64_t handle) = 0;
  // The newest weight version the policy serves.
  virtual int64_t weight_version() const = 0;

  // Submit and wait. Thread-safe; blocks the caller.
  ExpansionResult Expand(ExpansionRequest request);
};

}  // namespace deepsearch
