// Data-parallel training: the trainer hands its gradients to a reducer after backward and
// before the optimizer step; every rank then holds the mean over ranks. Torch types only
// through the tensors passed in.
#pragma once

#include <vector>

#include <ATen/ATen.h>

#include "absl/status/status.h"

namespace deepsearch {

class GradientReducer {
 public:
  virtual ~GradientReducer() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // Replaces every tensor with its mean over ranks (all ranks call it with the same shapes,
  // in the same order). Errors name the peer or the transport that failed.
  virtual absl::Status AllReduceMean(std::vector<at::Tensor>& tensors) = 0;
  // Sums scalars over ranks (token counts, loss sums), in place.
  virtual absl::Status AllReduceSum(std::vector<double>& values) = 0;
  // Makes every rank's tensors equal to rank 0's (initial weights).
  virtual absl::Status Broadcast(std::vector<at::Tensor>& tensors) = 0;
};

}  // namespace deepsearch
