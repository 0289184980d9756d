#include "learner/data_parallel.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <torch/version.h>
// LibTorch 2.9 renamed the c10d headers from .hpp to .h.
#if __has_include(<torch/csrc/distributed/c10d/TCPStore.hpp>)
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#else
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.h>
#include <torch/csrc/distributed/c10d/TCPStore.h>
#endif
#if !defined(USE_C10D_GLOO)
#error "LibTorch without c10d Gloo (USE_C10D_GLOO undefined): link the torch CMake target"
#endif

// NCCL only where the LibTorch found was built with CUDA and c10d's NCCL backend (a pip
// wheel); Debian's LibTorch is CPU-only.
#if defined(DEEPSEARCH_HAS_CUDA) && defined(USE_C10D_NCCL)
#define DEEPSEARCH_HAS_NCCL 1
#include <c10/cuda/CUDAFunctions.h>
#if __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#else
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.h>
#endif
#else
#define DEEPSEARCH_HAS_NCCL 0
#endif

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

#include "common/core/logging.h"
#include "common/core/status.h"

namespace deepsearch {
namespace {

// The collectives' common base: ProcessGroup in LibTorch 1.x, Backend (the per-device
// implementation a ProcessGroup dispatches to) from 2.0 on. ProcessGroupGloo and
// ProcessGroupNCCL derive from it in both.
#if TORCH_VERSION_MAJOR >= 2
using CollectiveGroup = c10d::Backend;
#else
using CollectiveGroup = c10d::ProcessGroup;
#endif

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

absl::Status ValidateConfig(const DataParallelConfig& c) {
  if (c.world_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("data_parallel.world_size: expected >= 1, got ", c.world_size));
  }
  if (c.rank < 0 || c.rank >= c.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("data_parallel.rank: expected in [0, ", c.world_size - 1, "], got ", c.rank));
  }
  if (c.backend != "gloo" && c.backend != "nccl") {
    return absl::InvalidArgumentError(absl::StrCat(
        "data_parallel.backend: expected \"gloo\" or \"nccl\", got \"", c.backend, "\""));
  }
  if (c.timeout < absl::Milliseconds(1)) {
    return absl::InvalidArgumentError(absl::StrCat("data_parallel.timeout: expected >= 1ms, got ",
                                                   absl::FormatDuration(c.timeout)));
  }
  return ParseDataParallelMaster(c.master).status();
}

// The message of a LibTorch exception without the C++ backtrace c10::Error carries.
std::string ExceptionMessage(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) {
    return c10_error->what_without_backtrace();
  }
  return e.what();
}

// Where a failure happened, for every error message.
std::string Where(const DataParallelConfig& c) {
  return absl::StrCat("data parallel rank ", c.rank, " of ", c.world_size, " (", c.backend,
                      ", master ", c.master, ")");
}

// A LibTorch failure as a status: DEADLINE_EXCEEDED when it came after (about) the
// timeout, whatever exception type this LibTorch version chose for it; UNAVAILABLE
// otherwise (a refused connection, a peer that closed its sockets).
absl::Status FailureStatus(const DataParallelConfig& c, std::string_view what,
                           absl::Duration elapsed, const std::string& message) {
  const bool timed_out = elapsed >= c.timeout * 0.9;
  std::string text =
      absl::StrCat(Where(c), ": ", std::string(what), " failed after ",
                   absl::FormatDuration(absl::Trunc(elapsed, absl::Milliseconds(1))),
                   timed_out ? " (timeout " : "", timed_out ? absl::FormatDuration(c.timeout) : "",
                   timed_out ? ")" : "", ": ", message);
  return timed_out ? absl::DeadlineExceededError(text) : absl::UnavailableError(text);
}

// Wider dtypes for the wire: Gloo's collectives do not all take float16/bfloat16, and sums
// are better taken in float32 anyway (the round trip of the values themselves is exact).
at::ScalarType WireDtype(at::ScalarType dtype) {
  return dtype == at::kHalf || dtype == at::kBFloat16 ? at::kFloat : dtype;
}

// Tensors of one (device, dtype), by their index in the caller's list.
struct Bucket {
  at::Device device;
  at::ScalarType dtype;
  std::vector<size_t> indices;
  int64_t numel = 0;
};

// Groups `tensors` by (device, dtype) in order of first appearance (the same on every rank,
// since every rank passes the same shapes in the same order).
absl::StatusOr<std::vector<Bucket>> MakeBuckets(const std::vector<at::Tensor>& tensors,
                                                bool floating_only) {
  std::vector<Bucket> buckets;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const at::Tensor& t = tensors[i];
    if (!t.defined())
      return absl::InvalidArgumentError(absl::StrCat("tensor ", i, " is undefined"));
    if (t.layout() != at::kStrided) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", i, " is not dense (sparse?)"));
    }
    if (floating_only && !at::isFloatingType(t.scalar_type())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor ", i, ": expected a floating-point dtype, got ", c10::toString(t.scalar_type())));
    }
    Bucket* bucket = nullptr;
    for (Bucket& b : buckets) {
      if (b.device == t.device() && b.dtype == t.scalar_type()) bucket = &b;
    }
    if (bucket == nullptr) {
      buckets.push_back(
          Bucket{.device = t.device(), .dtype = t.scalar_type(), .indices = {}, .numel = 0});
      bucket = &buckets.back();
    }
    bucket->indices.push_back(i);
    bucket->numel += t.numel();
  }
  return buckets;
}

// One contiguous buffer (in the wire dtype) holding the bucket's tensors, flattened in order.
at::Tensor Flatten(const std::vector<at::Tensor>& tensors, const Bucket& bucket) {
  std::vector<at::Tensor> parts;
  parts.reserve(bucket.indices.size());
  for (size_t i : bucket.indices) parts.push_back(tensors[i].reshape({-1}));
  return at::cat(parts).to(WireDtype(bucket.dtype));
}

// Copies the buffer back into the bucket's tensors, in place (casting back to their dtype).
void Unflatten(const at::Tensor& flat, const Bucket& bucket, std::vector<at::Tensor>& tensors) {
  int64_t offset = 0;
  for (size_t i : bucket.indices) {
    at::Tensor& t = tensors[i];
    const int64_t n = t.numel();
    t.copy_(flat.narrow(0, offset, n).view(t.sizes()));
    offset += n;
  }
}

class ProcessGroupReducer final : public GradientReducer {
 public:
  ProcessGroupReducer(DataParallelConfig config, c10::intrusive_ptr<c10d::Store> store,
                      c10::intrusive_ptr<CollectiveGroup> group, at::Device scalar_device)
      : config_(std::move(config)),
        store_(std::move(store)),
        group_(std::move(group)),
        scalar_device_(scalar_device) {}

  int rank() const override { return config_.rank; }
  int world_size() const override { return config_.world_size; }

  absl::Status AllReduceMean(std::vector<at::Tensor>& tensors) override {
    return ForEachBucket(tensors, /*floating_only=*/true, "all-reduce", /*write_back=*/true,
                         [&](at::Tensor& flat, const std::string& what) -> absl::Status {
                           DS_RETURN_IF_ERROR(SumOverRanks(flat, what));
                           flat.div_(static_cast<double>(config_.world_size));
                           return absl::OkStatus();
                         });
  }

  absl::Status AllReduceSum(std::vector<double>& values) override {
    if (values.empty()) return absl::OkStatus();
    c10::NoGradGuard no_grad;
    at::Tensor flat = at::from_blob(values.data(), {static_cast<int64_t>(values.size())},
                                    at::TensorOptions().dtype(at::kDouble))
                          .to(scalar_device_, /*non_blocking=*/false, /*copy=*/true);
    DS_RETURN_IF_ERROR(
        SumOverRanks(flat, absl::StrCat("all-reduce of ", values.size(), " scalars")));
    at::Tensor host = flat.cpu();
    const double* data = host.data_ptr<double>();
    for (size_t i = 0; i < values.size(); ++i) values[i] = data[i];
    return absl::OkStatus();
  }

  absl::Status Broadcast(std::vector<at::Tensor>& tensors) override {
    // Rank 0's tensors already hold the result.
    return ForEachBucket(tensors, /*floating_only=*/false, "broadcast from rank 0",
                         /*write_back=*/config_.rank != 0,
                         [&](at::Tensor& flat, const std::string& what) {
                           return Collective(what, [&] {
                             std::vector<at::Tensor> args{flat};
                             c10d::BroadcastOptions options;
                             options.rootRank = 0;
                             return group_->broadcast(args, options);
                           });
                         });
  }

 private:
  // Prefixes argument errors with this rank (a caller bug shows on one rank only, while its
  // peers wait in the collective until the timeout).
  template <typename T>
  absl::StatusOr<T> Checked(absl::StatusOr<T> result) const {
    if (result.ok()) return result;
    return Annotate(result.status(), Where(config_));
  }

  // Runs `op` on one flattened buffer per (device, dtype) bucket of `tensors` and, with
  // `write_back`, copies each buffer back into the bucket's tensors.
  absl::Status ForEachBucket(
      std::vector<at::Tensor>& tensors, bool floating_only, const std::string& verb,
      bool write_back,
      const std::function<absl::Status(at::Tensor& flat, const std::string& what)>& op) {
    c10::NoGradGuard no_grad;
    DS_ASSIGN_OR_RETURN(std::vector<Bucket> buckets, Checked(MakeBuckets(tensors, floating_only)));
    for (const Bucket& bucket : buckets) {
      if (bucket.numel == 0) continue;
      at::Tensor flat = Flatten(tensors, bucket);
      DS_RETURN_IF_ERROR(op(
          flat, absl::StrCat(verb, " of ", bucket.indices.size(), " ", c10::toString(bucket.dtype),
                             " tensors (", bucket.numel, " values)")));
      if (write_back) Unflatten(flat, bucket, tensors);
    }
    return absl::OkStatus();
  }

  // Sums `flat` over the ranks, in place.
  absl::Status SumOverRanks(at::Tensor& flat, const std::string& what) {
    return Collective(what, [&] {
      std::vector<at::Tensor> args{flat};
      c10d::AllreduceOptions options;
      options.reduceOp = c10d::ReduceOp::SUM;
      return group_->allreduce(args, options);
    });
  }

  // Starts a collective and waits for it. After a failure the group is unusable (a peer is
  // gone, or the ranks no longer agree on which collective comes next): every later call
  // fails at once with FAILED_PRECONDITION.
  absl::Status Collective(const std::string& what,
                          const std::function<c10::intrusive_ptr<c10d::Work>()>& start) {
    if (!broken_.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat(Where(config_), ": ", what,
                       " refused: the process group failed earlier: ", broken_.message()));
    }
    const absl::Time begin = absl::Now();
    std::string message;
    try {
      c10::intrusive_ptr<c10d::Work> work = start();
      work->wait();
      return absl::OkStatus();
    } catch (const std::exception& e) {
      message = ExceptionMessage(e);
    }
    broken_ = FailureStatus(config_, what, absl::Now() - begin, message);
    log::Error("{}", broken_.message());
    return broken_;
  }

  const DataParallelConfig config_;
  const c10::intrusive_ptr<c10d::Store> store_;
  const c10::intrusive_ptr<CollectiveGroup> group_;
  const at::Device scalar_device_;  // where AllReduceSum stages its scalars
  absl::Status broken_;             // the first failed collective; OK while healthy
};

// c10d takes a zero timeout to mean "none": never hand it less than a millisecond.
std::chrono::milliseconds Millis(absl::Duration d) {
  return std::chrono::milliseconds(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

// Rank 0 hosts the TCPStore; the others connect to it, retrying until `deadline` (the master
// may simply not be up yet: LibTorch 1.13 gives up on the first refused connection, 2.x
// retries within its own timeout).
absl::StatusOr<c10::intrusive_ptr<c10d::Store>> OpenStore(const DataParallelConfig& config,
                                                          const HostPort& master,
                                                          absl::Time deadline) {
  const absl::Time begin = absl::Now();
  absl::Duration backoff = absl::Milliseconds(50);
  for (int attempt = 1;; ++attempt) {
    c10d::TCPStoreOptions options;
    options.port = master.port;
    options.isServer = config.rank == 0;
    // Joining is counted by AwaitAllRanks (LibTorch 1.13's waitWorkers ignores a timeout
    // that is not a whole number of seconds, and does not fail when it passes).
    options.waitWorkers = false;
    // Whole seconds, rounded up: LibTorch 1.13 truncates the connect timeout to seconds (so
    // 999ms would be no time at all).
    options.timeout = std::chrono::seconds(std::max<int64_t>(
        1, absl::ToInt64Seconds(absl::Ceil(deadline - absl::Now(), absl::Seconds(1)))));
    try {
      return c10::intrusive_ptr<c10d::Store>(
          c10::make_intrusive<c10d::TCPStore>(master.host, options));
    } catch (const std::exception& e) {
      const absl::Time now = absl::Now();
      if (config.rank == 0 || now >= deadline) {
        const std::string stage =
            config.rank == 0 ? "hosting the store"
                             : absl::StrCat("connecting to the store (", attempt, " attempts)");
        return FailureStatus(config, stage, now - begin, ExceptionMessage(e));
      }
    }
    absl::SleepFor(std::min(backoff, deadline - absl::Now()));
    backoff = std::min(backoff * 2, absl::Seconds(1));
  }
}

// Every rank counts itself in at the store, then waits until all world_size ranks have:
// a missing rank becomes one clear error ("1 of 2 ranks joined") instead of a failure deep
// inside the process group's rendezvous.
absl::Status AwaitAllRanks(c10d::Store& store, const DataParallelConfig& config, absl::Time begin,
                           absl::Time deadline) {
  const std::string key = "deepsearch/data_parallel/joined";
  int64_t joined = 0;
  try {
    joined = store.add(key, 1);
    while (joined < config.world_size) {
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(absl::StrCat(
            Where(config), ": only ", joined, " of ", config.world_size,
            " ranks joined within the timeout (", absl::FormatDuration(config.timeout), ")"));
      }
      absl::SleepFor(absl::Milliseconds(20));
      joined = store.add(key, 0);
    }
  } catch (const std::exception& e) {
    return FailureStatus(config,
                         absl::StrCat("waiting for every rank to join (", joined, " of ",
                                      config.world_size, " so far)"),
                         absl::Now() - begin, ExceptionMessage(e));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status LocalReducer::AllReduceMean(std::vector<at::Tensor>& tensors) {
  (void)tensors;
  return absl::OkStatus();
}

absl::Status LocalReducer::AllReduceSum(std::vector<double>& values) {
  (void)values;
  return absl::OkStatus();
}

absl::Status LocalReducer::Broadcast(std::vector<at::Tensor>& tensors) {
  (void)tensors;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<GradientReducer>> CreateProcessGroupReducer(
    const DataParallelConfig& config) {
  DS_RETURN_IF_ERROR(ValidateConfig(config));
  DS_ASSIGN_OR_RETURN(HostPort master, ParseDataParallelMaster(config.master));
  if (config.backend == "nccl" && !DEEPSEARCH_HAS_NCCL) {
    return absl::FailedPreconditionError(absl::StrCat(
        Where(config), ": backend \"nccl\" needs a LibTorch built with CUDA and NCCL; this one (",
        TORCH_VERSION, ") is CPU-only: use backend \"gloo\""));
  }
  const absl::Time begin = absl::Now();
  const absl::Time deadline = begin + config.timeout;
  DS_ASSIGN_OR_RETURN(c10::intrusive_ptr<c10d::Store> store, OpenStore(config, master, deadline));
  DS_RETURN_IF_ERROR(AwaitAllRanks(*store, config, begin, deadline));

  // Every rank is up: the process group's own rendezvous is quick now.
  std::string stage = absl::StrCat("rendezvous of the ", config.backend, " process group");
  const std::chrono::milliseconds timeout = Millis(config.timeout);
  try {
    c10::intrusive_ptr<CollectiveGroup> group;
    at::Device scalar_device = at::kCPU;
    if (config.backend == "gloo") {
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      if (!config.gloo_interface.empty()) {
        options->devices.push_back(
            c10d::ProcessGroupGloo::createDeviceForInterface(config.gloo_interface));
      } else if (IsLoopback(master.host)) {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(master.host));
      } else {
        options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      // One context, one worker thread: the trainer waits on every collective anyway.
      options->threads = 1;
      group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, config.rank, config.world_size,
                                                          options);
    } else {
#if DEEPSEARCH_HAS_NCCL
      // Untested here (Debian's LibTorch has no CUDA). Each rank's tensors live on its own
      // GPU; scalars are staged on GPU rank % visible GPUs, torch's own default.
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, config.rank, config.world_size,
                                                          options);
      scalar_device = at::Device(
          at::kCUDA, static_cast<c10::DeviceIndex>(config.rank % c10::cuda::device_count()));
#endif
    }
    log::Info("data parallel: rank {} of {} joined the {} group at {} in {:.2f}s", config.rank,
              config.world_size, config.backend, config.master,
              absl::ToDoubleSeconds(absl::Now() - begin));
    return std::unique_ptr<GradientReducer>(std::make_unique<ProcessGroupReducer>(
        config, std::move(store), std::move(group), scalar_device));
  } catch (const std::exception& e) {
    return FailureStatus(config, stage, absl::Now() - begin, ExceptionMessage(e));
  }
}

absl::StatusOr<std::unique_ptr<GradientReducer>> CreateGradientReducer(
    const DataParallelConfig& config) {
  DS_RETURN_IF_ERROR(ValidateConfig(config));
  if (config.world_size == 1)
    return std::unique_ptr<GradientReducer>(std::make_unique<LocalReducer>());
  return CreateProcessGroupReducer(config);
}

absl::StatusOr<double> TokenMeanLossScale(GradientReducer& reducer, int64_t local_tokens) {
  // The collective comes first even for a bad count: a rank that skipped it would leave its
  // peers waiting until the timeout.
  std::vector<double> tokens = {static_cast<double>(local_tokens)};
  DS_RETURN_IF_ERROR(reducer.AllReduceSum(tokens));
  if (local_tokens < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("TokenMeanLossScale: negative local token count ", local_tokens));
  }
  if (tokens[0] <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("TokenMeanLossScale: no tokens on any of the ",
                                                   reducer.world_size(), " ranks"));
  }
  return static_cast<double>(reducer.world_size()) / tokens[0];
}

}  // namespace deepsearch
