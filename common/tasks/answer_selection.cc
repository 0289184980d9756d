#include "common/tasks/answer_selection.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "common/tasks/hard_subset.h"

namespace deepsearch {

SolveSummary SelectAnswer(bool has_ground_truth, absl::Span<const SampleVerdict> samples) {
  SolveSummary s;
  s.samples = static_cast<int32_t>(samples.size());
  const SampleVerdict* first_correct = nullptr;
  for (const SampleVerdict& v : samples) {
    if (has_ground_truth && v.correct) {
      ++s.correct_samples;
      if (first_correct == nullptr) first_correct = &v;
    }
  }
  if (first_correct != nullptr) {
    s.answer = first_correct->predicted;
    s.selection = "verified";
    s.correct = true;
  } else {
    // Majority among the samples that have an answer; ties to the earliest.
    std::vector<std::pair<std::string, int32_t>> counts;  // in first-seen order
    for (const SampleVerdict& v : samples) {
      const std::string& a = v.predicted;
      if (a.empty() || a == "[INVALID]" || v.incomplete) continue;
      auto it =
          std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == a; });
      if (it == counts.end()) {
        counts.emplace_back(a, 1);
      } else {
        ++it->second;
      }
    }
    const auto best =
        std::max_element(counts.begin(), counts.end(),
                         [](const auto& a, const auto& b) { return a.second < b.second; });
    if (best != counts.end()) {
      s.answer = best->first;
      s.selection = "majority";
    } else {
      s.selection = "none";
    }
  }
  if (has_ground_truth && s.samples > 0) {
    for (int32_t k = 1; k <= s.samples; k *= 2)
      s.pass_at_k[k] = PassAtK(s.samples, s.correct_samples, k);
    s.pass_at_k[s.samples] = PassAtK(s.samples, s.correct_samples, s.samples);
  }
  return s;
}

}  // namespace deepsearch
