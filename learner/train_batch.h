// What the learner trains on: scored sequences grouped for the advantage baseline
// (DEEPSEARCH_SPEC §3), and the advantages themselves. Torch-free.
//
// A group is the trajectories of one tree (or of one cached problem's rollouts): the learner
// subtracts the group mean of their final scores from every token score (§3.2; mean only by
// default, the std variant is the Table 4 ablation "Standard Advantages Normalization").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace deepsearch {

struct TrainSequence {
  std::string group_id;  // the tree; one advantage group
  std::vector<int32_t> prompt_tokens;
  std::vector<int32_t> response_tokens;
  // log pi_behaviour of every response token at sampling time; empty when unknown (a cached
  // solution), in which case the proximal policy stands in for it.
  std::vector<float> behavior_logprobs;
  std::vector<float> token_scores;  // one per response token (spec §3.1)
  float final_score = 0.0f;         // the last token's score
  int64_t weight_version = 0;       // the oldest weights that sampled any of its tokens
};

enum class AdvantageNorm {
  kMeanOnly,  // A = score - mean(final scores of the group), the paper's method
  kMeanStd,   // A = (score - mean) / (std + eps), std unbiased as torch.std
};

// One advantage per response token of every sequence, in order. A group of one sequence
// uses mean 0 (and std 1), as veRL does.
std::vector<std::vector<float>> ComputeAdvantages(const std::vector<TrainSequence>& sequences,
                                                  AdvantageNorm norm, float eps = 1e-6f);

}  // namespace deepsearch
