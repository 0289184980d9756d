// Pieces of the Qwen2 model shared by its two translation units, qwen2_model.cc (the forward
// of training) and qwen2_step.cc (the cached step of generation). Not a public header.
#pragma once

#include "common/model/torch_pch.h"

namespace deepsearch::qwen2_internal {

// y = w * (x_fp32 * rsqrt(mean(x_fp32^2) + eps)).to(dtype), as Qwen2RMSNorm.
inline at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const at::Tensor xf = x.to(at::kFloat);
  const at::Tensor variance = xf.pow(2).mean({-1}, /*keepdim=*/true);
  return weight * (xf * at::rsqrt(variance + eps)).to(x.scalar_type());
}

}  // namespace deepsearch::qwen2_internal
