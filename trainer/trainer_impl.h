// The trainer's private state, shared by its two translation units: trainer.cc (creation and
// the steps) and trainer_state.cc (checkpoints and the data-parallel start). Not a public
// header: only the trainer's own sources include it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "absl/status/statusor.h"
#include "trainer/trainer.h"

#include "common/model/qwen2_model.h"

namespace deepsearch {
namespace trainer_internal {

// A run of consecutive sequences [begin, end) of the batch, padded to the longest, with the
// logits rows that predict its response tokens.
struct MicroBatch {
  size_t begin = 0;
  size_t end = 0;
  at::Tensor ids;              // [n, T] int64, right-padded with 0
  at::Tensor lengths;          // [n] int64
  at::Tensor positions;        // [N] int64: row * T + (prompt - 1 + j) for response token j
  at::Tensor targets;          // [N] int64: the response tokens
  at::Tensor advantages;       // [N] float32 (RL steps)
  at::Tensor behavior;         // [N] float32, NaN where unknown (decoupled RL steps)
  at::Tensor old_logp;         // [N] float32, the proximal policy (RL steps)
  at::Tensor ref_logp;         // [N] float32, the reference policy (kl_coef > 0)
  int64_t tokens = 0;          // response tokens
  int64_t forward_tokens = 0;  // prompt + response tokens
};

// Where a HF-named parameter lies inside the fused storage the optimizer updates.
struct NamedSlot {
  std::string name;
  size_t index = 0;  // into Parameters()
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
  int64_t offset = 0;  // storage offset relative to the fused tensor's
};

inline at::Tensor SlotView(const at::Tensor& fused, const NamedSlot& slot) {
  return fused.as_strided(slot.sizes, slot.strides, fused.storage_offset() + slot.offset);
}

inline at::Tensor LongTensor(const std::vector<int64_t>& v) {
  return at::from_blob(const_cast<int64_t*>(v.data()), {static_cast<int64_t>(v.size())}, at::kLong)
      .clone();
}

// The trainer settings that must agree across data-parallel ranks and that a checkpoint
// records, as JSON.
nlohmann::json ConfigJson(const TrainerConfig& c);

}  // namespace trainer_internal

struct Trainer::Impl {
  TrainerConfig config;
  std::unique_ptr<Qwen2Model> model;      // the float32 master weights
  std::unique_ptr<Qwen2Model> low;        // the bfloat16 compute copy, or null
  std::unique_ptr<Qwen2Model> reference;  // frozen, in the compute dtype (kl_coef > 0)
  std::vector<at::Tensor> params;         // the master's Parameters()
  std::vector<at::Tensor> low_params;     // the compute copy's, in the same order
  std::vector<at::Tensor> low_grads;      // float32 accumulators of the copy's gradients
  std::vector<at::Tensor> exp_avg, exp_avg_sq;
  std::vector<trainer_internal::NamedSlot> slots;  // the HF names of the master's parameters
  int64_t vocab_limit = 0;
  int64_t step = 0;             // training steps taken
  int64_t optimizer_steps = 0;  // AdamW's t

  const Qwen2Model& compute() const { return low ? *low : *model; }
  int rank() const { return config.reducer != nullptr ? config.reducer->rank() : 0; }
  int world() const { return config.reducer != nullptr ? config.reducer->world_size() : 1; }

  absl::Status Validate(const std::vector<TrainSequence>& batch, bool supervised) const;
  void RefreshCompute();
  void ZeroGrads();
  // After a micro-batch's backward: moves the copy's gradients into the float32 sums.
  void AccumulateLowGrads();
  // All-reduces (with a reducer), clips and applies AdamW at `lr`. Returns the gradient norm
  // before clipping; a non-finite norm skips the update, as veRL does.
  absl::StatusOr<double> OptimizerStep(double lr);
  // The global response-token count of [begin, end) (summed over ranks) and the world size.
  absl::StatusOr<std::pair<double, double>> GlobalTokens(int64_t local);
  // This rank's share of `batch` under `plan`, mini-batch by mini-batch, each packed into
  // micro-batches on the model's device; sets stats' sequences and mean final score and adds
  // the share's advantages to *adv_sum.
  std::vector<std::vector<trainer_internal::MicroBatch>> PackMiniBatches(
      const std::vector<TrainSequence>& batch, const StepPlan& plan, TrainStepStats* stats,
      double* adv_sum) const;
  // Sets a micro-batch's proximal log-probs (and, decoupled, its behaviour log-probs where
  // unknown) to `logp`.
  void SetProximal(trainer_internal::MicroBatch& mb, const at::Tensor& logp) const;
  // Before the step's first update (no grad): every micro-batch's proximal log-probs, unless
  // they come from the training forward, and its reference log-probs (kl_coef > 0).
  void StartLogProbs(std::vector<std::vector<trainer_internal::MicroBatch>>& minis,
                     bool proximal_from_training) const;
  // One mini-batch of an RL step: forward, loss and backward per micro-batch, then one
  // optimizer step. Adds to stats' token counts and optimizer steps, and to `sums`.
  struct StepSums {
    double loss = 0, clip = 0, dual_clip = 0, kl = 0, grad_norm = 0;
  };
  absl::Status TrainMiniBatch(std::vector<trainer_internal::MicroBatch>& mini,
                              bool proximal_from_training, TrainStepStats* stats, StepSums* sums);
  std::vector<std::pair<std::string, at::Tensor>> Named(const std::vector<at::Tensor>& fused,
                                                        std::string_view prefix) const;
};

}  // namespace deepsearch
