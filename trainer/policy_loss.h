// The Tree-GRPO policy loss (DEEPSEARCH_SPEC §3.3; veRL's compute_policy_loss), minimised:
//
//   r   = exp(logp - old_logp)
//   L1  = -A r,  L2 = -A clip(r, 1 - clip_low, 1 + clip_high),  Lc = max(L1, L2)
//   loss_tok = A < 0 ? min(Lc, -A clip_c) : Lc          (the dual clip)
//   loss = sum(loss_tok * mask) / sum(mask)              (token-mean)
//
// Decoupled PPO (asynchronous training, Hilton et al. 2022): old_logp is the proximal policy
// (the weights at the start of the training step) and each token's loss is further weighted
// by exp(old_logp - behavior_logp), the importance weight of the behaviour policy that
// sampled it, capped at is_cap and carrying no gradient. Optional KL penalty against a
// reference policy (the k3 estimator, exp(ref - logp) - (ref - logp) - 1), off by default.
#pragma once

#include <ATen/ATen.h>

#include "trainer/trainer_config.h"

namespace deepsearch {

struct PolicyLossStats {
  double loss = 0.0;
  double clip_fraction = 0.0;       // tokens where the clipped term won
  double dual_clip_fraction = 0.0;  // tokens where the dual clip bound
  double approx_kl = 0.0;           // mean(old_logp - logp) over tokens
  double kl = 0.0;                  // mean k3 KL against the reference (when kl_coef > 0)
  double tokens = 0.0;
};

// All tensors [B, T] float32 on one device; mask 1 for response tokens, 0 elsewhere.
// behavior_logp and ref_logp may be undefined (no decoupling, no KL). Returns the scalar loss
// (with gradient through logp) and fills `stats` when not null.
at::Tensor PolicyLoss(const at::Tensor& logp, const at::Tensor& old_logp,
                      const at::Tensor& advantages, const at::Tensor& mask,
                      const PolicyLossConfig& config, const at::Tensor& behavior_logp,
                      const at::Tensor& ref_logp, PolicyLossStats* stats);

}  // namespace deepsearch
