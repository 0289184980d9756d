// The LibTorch runtime of this process: thread settings, and what the build and the machine
// offer (version, CUDA, BLAS). Torch stays out of this header.
#pragma once

#include <string>

#include "absl/status/status.h"

#include "common/core/runtime_config.h"

namespace deepsearch {

struct TorchRuntimeInfo {
  std::string torch_version;    // "1.13.0"
  bool cuda_built = false;      // this binary was built against a CUDA LibTorch
  bool cuda_available = false;  // and a GPU is usable now
  int cuda_devices = 0;
  int intra_op_threads = 0;
  int inter_op_threads = 0;
  // The BLAS shared library mapped into this process (empty if none is loaded yet). Must be
  // OpenBLAS on CPU: the reference BLAS is ~16x slower.
  std::string blas_library;
  std::string parallel_backend;  // ATen's own description ("OpenMP", ...)
};

TorchRuntimeInfo GetTorchRuntimeInfo();

// Applies runtime.torch_threads / torch_interop_threads, and ConfigureMalloc. Call once at
// start-up, before any torch work (the inter-op pool cannot be resized once used: that is an
// error).
absl::Status ConfigureTorchRuntime(const RuntimeConfig& config);

}  // namespace deepsearch
