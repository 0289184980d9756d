// Data-parallel gradient reduction over a torch c10d process group (ARCHITECTURE.md §7:
// multi-node learner; Gloo on CPUs, NCCL on GPUs), and the single-process reducer.
//
// Rendezvous: rank 0 hosts a c10d TCPStore at `master` (host:port); every rank connects to
// it, and the process group (Gloo or NCCL) exchanges its peers' addresses through it. All
// ranks must be started with the same world_size, master and backend.
//
// Collectives: AllReduceMean flattens its tensors into one contiguous buffer per
// (device, dtype) — one collective call per buffer instead of one per tensor — sums the
// buffers over ranks, divides by world_size and copies the result back into the caller's
// tensors in place (so parameter gradients held by the model are updated). float16 and
// bfloat16 tensors are reduced in float32. Broadcast does the same with rank 0 as the
// source; AllReduceSum moves its scalars as one float64 tensor.
//
// The loss convention for a token-mean loss over the global batch. Rank r holds n_r of the
// N = sum_r n_r tokens of an optimizer step; the target gradient is
// grad (1/N) sum_{all tokens} l_t. Each rank backpropagates
//     L_r = (W / N) * sum_{tokens of r} l_t        (W = world_size)
// and AllReduceMean then yields (1/W) sum_r (W/N) grad sum_r l_t = grad (1/N) sum l_t,
// exactly the one-process gradient of the whole batch, whatever the split. N comes from an
// AllReduceSum of the n_r; TokenMeanLossScale returns W / N. (With one process, W = 1 and the
// scale is 1/N, the ordinary token mean.)
//
// Errors: an unreachable master, peers that never join, a peer that dies mid-collective and
// timeouts become absl statuses (DEADLINE_EXCEEDED for timeouts, UNAVAILABLE otherwise)
// whose messages name this rank and the master address; no LibTorch exception escapes.
//
// Not supported: NCCL with Debian's CPU-only LibTorch (refused at creation); sparse
// tensors; changing the world size of a running group (elastic training).
//
// Threading: a reducer is driven by one thread (the trainer's); collectives block until
// every rank has called the same collective, or the timeout passes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "trainer/gradient_reducer.h"

#include "learner/data_parallel_config.h"

namespace deepsearch {

// One process: rank 0 of 1; every collective leaves its arguments unchanged.
class LocalReducer final : public GradientReducer {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  absl::Status AllReduceMean(std::vector<at::Tensor>& tensors) override;
  absl::Status AllReduceSum(std::vector<double>& values) override;
  absl::Status Broadcast(std::vector<at::Tensor>& tensors) override;
};

// Joins the process group described by `config`: rank 0 hosts the store and waits for the
// other ranks; the others connect to it. Blocks until every rank has joined or
// config.timeout passes (DEADLINE_EXCEEDED / UNAVAILABLE naming the rank and the master).
// INVALID_ARGUMENT for a bad config; FAILED_PRECONDITION for "nccl" in a build without
// CUDA and NCCL. A world_size of 1 still builds a (one-member) process group.
absl::StatusOr<std::unique_ptr<GradientReducer>> CreateProcessGroupReducer(
    const DataParallelConfig& config);

// The reducer for `config`: a LocalReducer when world_size is 1 (no sockets, no store),
// otherwise CreateProcessGroupReducer.
absl::StatusOr<std::unique_ptr<GradientReducer>> CreateGradientReducer(
    const DataParallelConfig& config);

// The factor each rank multiplies its summed per-token loss by so that AllReduceMean of the
// gradients gives the gradient of the global token mean: world_size / (sum over ranks of
// local_tokens). A collective: every rank calls it. INVALID_ARGUMENT when no rank has a
// token.
absl::StatusOr<double> TokenMeanLossScale(GradientReducer& reducer, int64_t local_tokens);

}  // namespace deepsearch
