// One decoding step's sampling for a batch of sequences, and the stop rules of a sequence:
// shared by the Generator and the inference engine so both sample and stop identically.
//
// SampleRows: for each sample, take its row of the step's logits, restricted to the
// tokenizer's vocabulary and divided by its temperature; log-softmax it (fp32); record the
// entropy of that full distribution; draw the token with SampleToken (top-k, top-p, the
// sample's own Rng); report the token's log-prob under the same distribution.
//
// StopRule: a sample ends at an EOS id (kept as its last token), a stop token (kept), a
// stop string (the token that completed it is kept) or max_new_tokens.
//
// Thread-compatible.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/types/span.h"

#include "common/core/rng.h"
#include "common/model/torch_pch.h"
#include "common/sampling/sampler.h"

namespace deepsearch {

struct SampledToken {
  int32_t token = 0;
  float logprob = 0;
  float entropy = 0;
};

// What SampleRows needs of one sample: its row in the logits, its settings, its stream.
struct SampleSlot {
  int64_t row = 0;
  const SamplingParams* params = nullptr;
  Rng* rng = nullptr;
};

// logits: [rows, vocab] fp32 on any device. One token per slot, in slot order.
std::vector<SampledToken> SampleRows(const at::Tensor& logits, absl::Span<const SampleSlot> slots,
                                     int64_t vocab_limit);

class StopRule {
 public:
  // `token_bytes` is needed (and only called) when params has stop strings.
  StopRule(const SamplingParams& params, absl::Span<const int32_t> eos_ids,
           std::function<std::string(int32_t)> token_bytes);
  // Call with each generated token in order; returns the finish reason once the sample ends.
  std::optional<FinishReason> Push(int32_t token);
  int32_t generated() const { return generated_; }

 private:
  const SamplingParams* params_;
  std::vector<int32_t> eos_;
  std::function<std::string(int32_t)> token_bytes_;
  size_t longest_stop_ = 0;
  std::string tail_;  // the last bytes of text, for stop strings
  int32_t generated_ = 0;
};

}  // namespace deepsearch
