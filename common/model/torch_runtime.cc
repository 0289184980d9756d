#include "common/model/torch_runtime.h"

#include <fstream>
#include <string>

#include <ATen/Parallel.h>
#include <torch/version.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include "common/model/torch_pch.h"

namespace deepsearch {
namespace {

// The first mapped shared object whose file name mentions BLAS.
std::string MappedBlasLibrary() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    const std::string file = path.substr(path.rfind('/') + 1);
    if (absl::StrContains(file, "blas") && absl::StrContains(file, ".so")) return path;
  }
  return "";
}

std::string FirstLineContaining(const std::string& text, std::string_view needle) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StrContains(line, absl::string_view(needle.data(), needle.size()))) {
      return std::string(absl::StripAsciiWhitespace(line));
    }
  }
  return "";
}

}  // namespace

TorchRuntimeInfo GetTorchRuntimeInfo() {
  TorchRuntimeInfo info;
  info.torch_version = TORCH_VERSION;
#ifdef DEEPSEARCH_HAS_CUDA
  info.cuda_built = true;
#endif
  info.cuda_available = at::hasCUDA();
  info.cuda_devices = info.cuda_available ? static_cast<int>(at::getNumGPUs()) : 0;
  info.intra_op_threads = at::get_num_threads();
  info.inter_op_threads = at::get_num_interop_threads();
  // Touch BLAS once so the library is mapped, then find it.
  (void)at::mm(at::ones({2, 2}), at::ones({2, 2}));
  info.blas_library = MappedBlasLibrary();
  const std::string parallel = at::get_parallel_info();
  info.parallel_backend = FirstLineContaining(parallel, "backend");
  return info;
}

absl::Status ConfigureTorchRuntime(const RuntimeConfig& config) {
  try {
    at::set_num_threads(config.torch_threads);
    if (at::get_num_interop_threads() != config.torch_interop_threads) {
      at::set_num_interop_threads(config.torch_interop_threads);
    }
  } catch (const c10::Error& e) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot set torch threads (", config.torch_threads, " intra-op, ",
                     config.torch_interop_threads, " inter-op): ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

}  // namespace deepsearch
