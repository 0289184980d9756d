// The Tree-GRPO trainer: one training step over a batch of scored sequences
// (DEEPSEARCH_SPEC §3; veRL's dp_actor.update_policy), and the supervised step of the warm
// start, on a Qwen2Model it owns.
//
// A training step:
//   1. advantages for the whole batch (train_batch.h), groups intact;
//   2. old log-probs recomputed with the weights at the start of the step (no grad), the
//      proximal policy (with one mini-batch: the training forward's own log-probs, detached,
//      which are the same values without a second forward pass); with `decoupled`, the sequences'
//      behaviour log-probs also weight each token (policy_loss.h); without, they are not used;
//   3. the batch split in order into `mini_batches` parts, one optimizer step each (with a
//      reducer of world_size > 1 every rank is handed the same batch and trains its share of
//      each part, train_batch.h PlanStep; the step equals a one-process step); each
//      mini-batch packed into micro-batches of at most micro_batch_tokens tokens (prompt +
//      response, padded per micro-batch), gradients accumulated so that the mini-batch loss
//      is exactly the token-mean over all its response tokens, whatever the packing (and,
//      with a GradientReducer, over all ranks' tokens);
//   4. gradient-norm clipping, then AdamW (decoupled weight decay) at the step's learning
//      rate: linear warm-up from 0 at training step 0 to `lr` at step `warmup_steps`, then
//      constant (veRL's schedule; the LR changes per training step, not per mini-batch).
//
// Log-probs are those of softmax(logits / temperature) over the first vocab_limit ids (the
// tokenizer's), as the engine samples them (common/sampling/sampler.h).
//
// Precision: the master weights and AdamW's moments are float32. compute_dtype "bfloat16"
// runs forward and backward on a bfloat16 copy of the weights refreshed before every
// mini-batch, its gradients accumulated into float32.
//
// Checkpoints: Save writes the model (safetensors, HF names), the optimizer moments
// (safetensors) and the step counters (JSON) into a directory; Load restores them, so a
// resumed run continues bit for bit.
//
// KL (loss.kl_coef > 0): the reference policy is a frozen copy, in the compute dtype, of the
// weights handed to Create; checkpoints carry it.
//
// Thread-compatible: one thread drives a trainer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "trainer/gradient_reducer.h"
#include "trainer/policy_loss.h"
#include "trainer/train_batch.h"
#include "trainer/trainer_config.h"

#include "common/model/qwen2_model.h"

namespace deepsearch {

struct TrainStepStats {
  int64_t step = 0;  // the training step just taken (0-based)
  int32_t optimizer_steps = 0;
  double lr = 0.0;
  double loss = 0.0;       // mean over mini-batches
  double grad_norm = 0.0;  // mean over mini-batches, before clipping
  double clip_fraction = 0.0;
  double dual_clip_fraction = 0.0;
  double approx_kl = 0.0;
  double mean_advantage = 0.0;
  double mean_final_score = 0.0;
  int64_t sequences = 0;
  int64_t tokens = 0;          // response tokens trained on (this rank)
  int64_t forward_tokens = 0;  // prompt + response tokens through forward and backward
  double seconds = 0.0;
};

// The optimizer's arithmetic, exposed for tests and for other drivers of the same update.
//
// torch.nn.utils.clip_grad_norm_: returns the global L2 norm of `grads` and, when max_norm > 0
// and the norm exceeds it, scales every gradient in place by max_norm / (norm + 1e-6).
double ClipGradNorm(const std::vector<at::Tensor>& grads, double max_norm);
// One torch.optim.AdamW update of `param` in place at step t (1-based): p *= 1 - lr wd;
// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). Uses the config's betas, eps
// and weight decay. No autograd is recorded.
void AdamWUpdate(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
                 const at::Tensor& exp_avg_sq, int64_t t, double lr, const TrainerConfig& config);

class Trainer {
 public:
  // Takes the model (float32 master weights; its device is the trainer's).
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(std::unique_ptr<Qwen2Model> model,
                                                         TrainerConfig config);
  ~Trainer();

  // One Tree-GRPO training step. InvalidArgument for a malformed batch (scores or
  // log-probs not matching the response length, empty responses), naming the sequence.
  absl::StatusOr<TrainStepStats> Step(const std::vector<TrainSequence>& batch);
  // One supervised step (the warm start): token-mean negative log-likelihood of the
  // response tokens, same micro-batching, one optimizer step, the same LR schedule.
  // stats.loss is the mean NLL per token.
  absl::StatusOr<TrainStepStats> SupervisedStep(const std::vector<TrainSequence>& batch);

  const Qwen2Model& model() const;
  const TrainerConfig& config() const;
  int64_t step() const;  // training steps taken
  double LearningRate(int64_t step) const;

  // Data parallel (a reducer of world_size > 1; a no-op otherwise): checks that every rank
  // has the same architecture and trainer settings (FAILED_PRECONDITION on every rank, naming
  // how many differ, when not), then makes this trainer's weights, AdamW moments, reference
  // and step counters equal to rank 0's. A collective: every rank calls it, after Create or
  // Load and before the first step.
  absl::Status SyncWithRankZero();

  absl::Status Save(const std::string& dir) const;
  absl::Status Load(const std::string& dir);

 private:
  struct Impl;
  explicit Trainer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace deepsearch
