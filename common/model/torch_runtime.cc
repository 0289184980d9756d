#include "common/model/torch_runtime.h"

#include <dlfcn.h>

#include <filesystem>
#include <string>

#include <ATen/Parallel.h>
#include <torch/version.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include "common/core/status.h"
#include "common/model/torch_pch.h"

namespace deepsearch {
namespace {

// The shared object that provides sgemm_ (the Fortran BLAS entry LibTorch calls), with links
// resolved (Debian's libblas.so.3 is an alternatives link); empty if no BLAS is loaded.
std::string LoadedBlasLibrary() {
  void* sgemm = ::dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info info;
  if (sgemm == nullptr || ::dladdr(sgemm, &info) == 0 || info.dli_fname == nullptr) return "";
  std::error_code error;
  const std::filesystem::path resolved = std::filesystem::canonical(info.dli_fname, error);
  return error ? std::string(info.dli_fname) : resolved.string();
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
  info.blas_library = LoadedBlasLibrary();
  const std::string parallel = at::get_parallel_info();
  info.parallel_backend = FirstLineContaining(parallel, "backend");
  return info;
}

absl::Status ConfigureTorchRuntime(const RuntimeConfig& config) {
  DS_RETURN_IF_ERROR(ConfigureMalloc(config));
  try {
    at::set_num_threads(config.torch_threads);
    if (static_cast<int64_t>(at::get_num_interop_threads()) != config.torch_interop_threads) {
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
