#include "common/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"

#include "common/core/logging.h"

namespace deepsearch {

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kEos:
      return "eos";
    case FinishReason::kStopToken:
      return "stop_token";
    case FinishReason::kStopString:
      return "stop_string";
    case FinishReason::kLength:
      return "length";
  }
  return "length";
}

absl::Status SamplingParams::Validate() const {
  if (!(temperature > 0) || !std::isfinite(temperature)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling.temperature must be > 0, got ", temperature));
  }
  if (!(top_p > 0 && top_p <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling.top_p must be in (0, 1], got ", top_p));
  }
  if (max_new_tokens <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling.max_new_tokens must be > 0, got ", max_new_tokens));
  }
  for (const std::string& s : stop_strings) {
    if (s.empty())
      return absl::InvalidArgumentError("sampling.stop_strings must not contain an empty string");
  }
  return absl::OkStatus();
}

int32_t SampleToken(absl::Span<const float> logprobs, int32_t top_k, float top_p, Rng& rng) {
  DS_CHECK(!logprobs.empty()) << "SampleToken over an empty distribution";
  const int32_t vocab = static_cast<int32_t>(logprobs.size());
  const double u = rng.Uniform();
  const bool use_top_k = top_k > 0 && top_k < vocab;
  if (!use_top_k && top_p >= 1.0f) {
    // Inverse CDF in id order over the full distribution.
    double acc = 0.0;
    int32_t last_possible = 0;
    for (int32_t i = 0; i < vocab; ++i) {
      const double p = std::exp(static_cast<double>(logprobs[static_cast<size_t>(i)]));
      if (p > 0) last_possible = i;
      acc += p;
      if (u < acc) return i;
    }
    return last_possible;  // u beyond the rounded total: the last token with mass
  }
  // Most likely first; ties to the lower id.
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  auto more_likely = [&](int32_t a, int32_t b) {
    const float la = logprobs[static_cast<size_t>(a)], lb = logprobs[static_cast<size_t>(b)];
    return la > lb || (la == lb && a < b);
  };
  size_t keep = order.size();
  if (use_top_k) {
    keep = static_cast<size_t>(top_k);
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                      more_likely);
  } else {
    std::sort(order.begin(), order.end(), more_likely);
  }
  std::vector<double> probs(keep);
  double total = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    probs[i] = std::exp(static_cast<double>(logprobs[static_cast<size_t>(order[i])]));
    total += probs[i];
  }
  if (top_p < 1.0f) {
    // The smallest prefix whose renormalised mass reaches top_p (at least one token).
    double acc = 0.0;
    size_t n = 0;
    while (n < keep) {
      acc += probs[n++];
      if (acc >= static_cast<double>(top_p) * total) break;
    }
    keep = n;
    total = acc;
  }
  const double target = u * total;
  double acc = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    acc += probs[i];
    if (target < acc) return order[i];
  }
  return order[keep - 1];
}

}  // namespace deepsearch
