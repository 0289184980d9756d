#include "learner/train_batch.h"

#include <cmath>
#include <map>

namespace deepsearch {

std::vector<std::vector<float>> ComputeAdvantages(const std::vector<TrainSequence>& sequences,
                                                  AdvantageNorm norm, float eps) {
  // Per group: the mean and (unbiased) std of the final scores, in double, as veRL's
  // compute_grpo_outcome_advantage does with torch.mean / torch.std over the group.
  struct Group {
    double sum = 0.0;
    double sum_sq_dev = 0.0;
    int64_t n = 0;
    double mean = 0.0;
    double std = 1.0;
  };
  std::map<std::string, Group> groups;
  for (const TrainSequence& s : sequences) {
    Group& g = groups[s.group_id];
    g.sum += s.final_score;
    ++g.n;
  }
  for (auto& [id, g] : groups) {
    if (g.n > 1) g.mean = g.sum / static_cast<double>(g.n);
  }
  for (const TrainSequence& s : sequences) {
    Group& g = groups[s.group_id];
    const double d = s.final_score - g.mean;
    g.sum_sq_dev += d * d;
  }
  for (auto& [id, g] : groups) {
    if (g.n > 1) g.std = std::sqrt(g.sum_sq_dev / static_cast<double>(g.n - 1));
  }

  std::vector<std::vector<float>> advantages;
  advantages.reserve(sequences.size());
  for (const TrainSequence& s : sequences) {
    const Group& g = groups[s.group_id];
    const double scale = norm == AdvantageNorm::kMeanStd ? 1.0 / (g.std + eps) : 1.0;
    std::vector<float>& a = advantages.emplace_back();
    a.reserve(s.token_scores.size());
    for (float score : s.token_scores)
      a.push_back(static_cast<float>((static_cast<double>(score) - g.mean) * scale));
  }
  return advantages;
}

}  // namespace deepsearch
