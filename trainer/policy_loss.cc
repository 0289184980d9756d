#include "trainer/policy_loss.h"

namespace deepsearch {

at::Tensor PolicyLoss(const at::Tensor& logp, const at::Tensor& old_logp,
                      const at::Tensor& advantages, const at::Tensor& mask,
                      const PolicyLossConfig& config, const at::Tensor& behavior_logp,
                      const at::Tensor& ref_logp, PolicyLossStats* stats) {
  const at::Tensor m = mask.to(logp.scalar_type());
  const at::Tensor tokens = m.sum();
  const at::Tensor denom = tokens.clamp_min(1.0);
  auto masked_mean = [&](const at::Tensor& x) { return (x * m).sum() / denom; };

  // veRL clamps log(r) to [-20, 20] before the exponential, so a wild token cannot overflow.
  const at::Tensor log_ratio = (logp - old_logp).clamp(-20.0, 20.0);
  const at::Tensor ratio = at::exp(log_ratio);
  const at::Tensor l1 = -advantages * ratio;
  const at::Tensor l2 = -advantages * ratio.clamp(1.0 - config.clip_low, 1.0 + config.clip_high);
  const at::Tensor clipped = at::maximum(l1, l2);
  const at::Tensor l3 = -advantages * config.clip_c;
  const at::Tensor negative = advantages < 0;
  at::Tensor per_token = at::where(negative, at::minimum(clipped, l3), clipped);

  if (behavior_logp.defined()) {
    // Decoupled PPO: the behaviour policy's importance weight, capped, without gradient.
    const at::Tensor weight =
        at::exp((old_logp - behavior_logp).clamp(-20.0, 20.0)).clamp_max(config.is_cap).detach();
    per_token = per_token * weight;
  }
  at::Tensor kl;
  if (config.kl_coef > 0 && ref_logp.defined()) {
    // k3 ("low_var_kl" in veRL): exp(ref - logp) - (ref - logp) - 1, clamped to [-10, 10].
    const at::Tensor d = (ref_logp - logp).clamp(-20.0, 20.0);
    kl = (at::exp(d) - d - 1.0).clamp(-10.0, 10.0);
    per_token = per_token + config.kl_coef * kl;
  }
  const at::Tensor loss = masked_mean(per_token);

  if (stats != nullptr) {
    c10::NoGradGuard no_grad;
    stats->loss = loss.item<double>();
    stats->tokens = tokens.item<double>();
    stats->clip_fraction = masked_mean((l2 > l1).to(m.scalar_type())).item<double>();
    stats->dual_clip_fraction =
        masked_mean(((clipped > l3) & negative).to(m.scalar_type())).item<double>();
    stats->approx_kl = masked_mean(old_logp - logp).item<double>();
    stats->kl = kl.defined() ? masked_mean(kl).item<double>() : 0.0;
  }
  return loss;
}

}  // namespace deepsearch
