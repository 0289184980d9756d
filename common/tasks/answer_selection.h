// The answer of a solved problem, chosen from plain per-sample verdicts (spec §1.3, the solve
// mode): a verified-correct answer when the problem has a ground truth and some sample is
// correct; otherwise the most frequent answer among the samples that have one (ties to the
// earliest); pass@k from the samples' correctness. Below both the search (which produces the
// samples) and the learner (which stores the summaries of its solve jobs).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/types/span.h"

namespace deepsearch {

// What the verifier said of one sample.
struct SampleVerdict {
  std::string predicted;    // the extracted answer, normalised; "" or "[INVALID]" for none
  bool correct = false;     // verified against the ground truth
  bool incomplete = false;  // truncated without an answer: never counted for the majority
};

// The outcome of an inference-time search (ProblemResult in problem_service.proto).
struct SolveSummary {
  std::string answer;     // the chosen answer, normalised as the verifier compares it
  std::string selection;  // "verified", "majority", or "none" (no sample has an answer)
  bool correct = false;   // verified correct (false without a ground truth)
  int32_t samples = 0;
  int32_t correct_samples = 0;
  std::map<int32_t, double> pass_at_k;  // k = 1, 2, 4, ... up to samples (and samples itself)
};

// Picks the answer from the samples' verdicts; `has_ground_truth` says whether `correct` means
// anything (without one, every sample counts as not correct).
SolveSummary SelectAnswer(bool has_ground_truth, absl::Span<const SampleVerdict> samples);

}  // namespace deepsearch
