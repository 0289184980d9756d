// What the learner trains on: scored sequences grouped for the advantage baseline
// (DEEPSEARCH_SPEC §3), and the advantages themselves. Torch-free.
//
// A group is the trajectories of one tree (or of one cached problem's rollouts): the learner
// subtracts the group mean of their final scores from every token score (§3.2; mean only by
// default, the std variant is the Table 4 ablation "Standard Advantages Normalization").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

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
  kMeanStd,   // A = (score - mean) / (std + eps), the population std of the group, as the
              // reference code's sibling_mean_std (torch std(unbiased=False))
};

// One advantage per response token of every sequence, in order. A group of one sequence
// uses mean 0 (and std 1), as veRL does.
std::vector<std::vector<float>> ComputeAdvantages(const std::vector<TrainSequence>& sequences,
                                                  AdvantageNorm norm, float eps = 1e-6f);

// How a step's advantage falls on its all-wrong groups (no trajectory correct). GRPO gives
// every token of such a group A = 0 (all final scores equal the mean); in Tree-GRPO the
// intermediate tokens of a tree keep tanh(q) - mean, and with every leaf at -1 that is
// 1 + tanh(q) > 0 before the overlong penalty: the search's q-values still teach on them.
struct GroupSummary {
  int32_t groups = 0;
  int32_t all_wrong_groups = 0;
  int64_t all_wrong_tokens = 0;           // response tokens of the all-wrong groups
  double all_wrong_mean_advantage = 0.0;  // mean over those tokens; 0 when there are none
  double AllWrongShare() const {
    return groups > 0 ? static_cast<double>(all_wrong_groups) / groups : 0.0;
  }
};
// `correct[i]`: whether batch[i] was verified correct; `advantages` as ComputeAdvantages.
GroupSummary SummarizeGroups(const std::vector<TrainSequence>& batch,
                             const std::vector<bool>& correct,
                             const std::vector<std::vector<float>>& advantages);

// How a training step's batch is split (veRL's update_policy, and its data-parallel dispatch):
// the batch in order into min(mini_batches, n) mini-batches by sequence count (mini-batch k
// is [k n / parts, (k + 1) n / parts)), one optimizer step each; with world_size > 1 each
// mini-batch is dealt over the ranks, longest sequence (prompt + response tokens) first to the
// rank with the fewest tokens so far (ties: the earlier sequence, the lower rank), each rank's
// share kept in batch order. Advantages are computed over the whole batch first, so groups
// that straddle ranks or mini-batches keep their baseline.
//
// Every rank plans from the same batch and gets its own part; with the trainer's token-mean
// scaling (learner/data_parallel.h) a step over `world_size` ranks equals a one-process step
// on the same batch up to float summation order. A rank's mini-batch may be empty (fewer
// sequences than ranks); it still takes part in every collective.
struct StepPlan {
  std::vector<std::vector<float>> advantages;  // every sequence of the batch
  // mini_batches[k]: the indices into the batch this rank trains in optimizer step k. The
  // number of mini-batches is the same on every rank.
  std::vector<std::vector<size_t>> mini_batches;
};
StepPlan PlanStep(const std::vector<TrainSequence>& batch, AdvantageNorm norm, int32_t mini_batches,
                  int rank = 0, int world_size = 1);

// A batch as bytes, for rank 0 to hand every rank the step's batch (little-endian, a magic
// and format number first). Decode checks every length against what is left and refuses
// trailing bytes: INVALID_ARGUMENT naming the sequence and field that does not fit.
std::string EncodeTrainSequences(const std::vector<TrainSequence>& batch);
absl::StatusOr<std::vector<TrainSequence>> DecodeTrainSequences(std::string_view bytes);

}  // namespace deepsearch
