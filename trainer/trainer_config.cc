#include "trainer/trainer_config.h"

namespace deepsearch {

void PolicyLossConfig::Bind(ConfigBinder& b) {
  b.Field("clip_low", clip_low, "PPO clip: the ratio is clipped below at 1 - clip_low")
      .Range(0.0, 1.0);
  b.Field("clip_high", clip_high, "Clip-Higher: the ratio is clipped above at 1 + clip_high")
      .Min(0.0);
  b.Field("clip_c", clip_c, "Dual clip: negative-advantage token losses are capped at -A * c")
      .Min(1.0);
  b.Field("kl_coef", kl_coef, "Weight of the k3 KL penalty against the initial policy (0: off)")
      .Min(0.0);
  b.Field("is_cap", is_cap, "Async mode: cap of the behaviour importance weight").Min(1.0);
}

void TrainerConfig::Bind(ConfigBinder& b) {
  b.Field("lr", lr, "AdamW learning rate after warm-up").Min(0.0);
  b.Field("warmup_steps", warmup_steps, "Linear warm-up from 0, in training steps").Min(0);
  b.Field("weight_decay", weight_decay, "AdamW decoupled weight decay").Min(0.0);
  b.Field("beta1", beta1, "AdamW beta1").Range(0.0, 1.0);
  b.Field("beta2", beta2, "AdamW beta2").Range(0.0, 1.0);
  b.Field("adam_eps", adam_eps, "AdamW epsilon").Positive();
  b.Field("grad_clip", grad_clip, "Global gradient L2-norm clip (<= 0: off)");
  b.Field("mini_batches", mini_batches, "Optimizer steps per training step").Range(1, 1 << 20);
  b.Field("micro_batch_tokens", micro_batch_tokens,
          "Most tokens (prompt + response, padded) per forward/backward pass")
      .Min(1);
  b.Field("compute_dtype", compute_dtype, "float32 or bfloat16 (master weights stay float32)");
  b.Require(compute_dtype == "float32" || compute_dtype == "bfloat16", "compute_dtype",
            "must be float32 or bfloat16");
  b.Field("temperature", temperature, "Sampling temperature the log-probs are taken at").Positive();
  b.Field("vocab_limit", vocab_limit, "Ids sampled from (0: the model's vocabulary)").Min(0);
  b.Enum("advantage_norm", advantage_norm,
         {{"mean", AdvantageNorm::kMeanOnly}, {"mean_std", AdvantageNorm::kMeanStd}},
         "Advantage: score - group mean (mean) or divided by the group std too (mean_std)");
  b.Section("loss", loss, "The dual-clip PPO loss");
}

}  // namespace deepsearch
