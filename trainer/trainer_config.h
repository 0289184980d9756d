// The settings of the Tree-GRPO loss and of the trainer (trainer/policy_loss.h,
// trainer/trainer.h), torch-free so that configuration files and the CLI build without
// LibTorch's headers. Bind() maps them to the `train` section of the config file.
#pragma once

#include <cstdint>
#include <string>

#include "trainer/train_batch.h"

#include "common/core/config.h"

namespace deepsearch {

class GradientReducer;

struct PolicyLossConfig {
  double clip_low = 0.2;
  double clip_high = 0.28;  // Clip-Higher
  double clip_c = 10.0;     // dual clip
  double kl_coef = 0.0;     // 0: no KL term, no reference model
  double is_cap = 2.0;      // decoupled PPO: cap of the behaviour importance weight

  void Bind(ConfigBinder& b);
};

struct TrainerConfig {
  double lr = 1e-6;
  int32_t warmup_steps = 10;  // training steps; the first step runs at LR 0 (veRL)
  double weight_decay = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double adam_eps = 1e-8;
  double grad_clip = 1.0;    // global L2 norm; <= 0: off
  int32_t mini_batches = 8;  // optimizer steps per training step
  int64_t micro_batch_tokens = 18432;
  std::string compute_dtype = "float32";  // or "bfloat16"
  double temperature = 1.0;
  int64_t vocab_limit = 0;  // 0: the model's vocab_size
  AdvantageNorm advantage_norm = AdvantageNorm::kMeanOnly;
  PolicyLossConfig loss;
  bool decoupled = false;  // asynchronous mode: weight tokens by the behaviour importance ratio
  GradientReducer* reducer = nullptr;  // data parallel; nullptr: one process (not configured)

  void Bind(ConfigBinder& b);
};

}  // namespace deepsearch
