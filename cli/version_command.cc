// deepsearch version [--json]: the build, the libraries and what this machine offers.
#include <iostream>

#include <nlohmann/json.hpp>

#ifdef DEEPSEARCH_WITH_GRPC
#include <google/protobuf/stubs/common.h>
#include <grpcpp/grpcpp.h>
#endif

#include "cli/build_info.h"
#include "cli/commands.h"
#include "common/model/torch_runtime.h"

namespace deepsearch::cli {
namespace {

nlohmann::json VersionJson() {
  const BuildInfo& build = GetBuildInfo();
  const TorchRuntimeInfo torch = GetTorchRuntimeInfo();
  nlohmann::json j;
  j["version"] = build.version;
  j["git_commit"] = build.git_commit;
  j["build_type"] = build.build_type;
  j["compiler"] = build.compiler;
  j["cxx_standard"] = build.cxx_standard;
  j["torch"] = {{"version", torch.torch_version},
                {"cuda_built", torch.cuda_built},
                {"cuda_available", torch.cuda_available},
                {"cuda_devices", torch.cuda_devices},
                {"intra_op_threads", torch.intra_op_threads},
                {"inter_op_threads", torch.inter_op_threads},
                {"blas", torch.blas_library},
                {"parallel_backend", torch.parallel_backend}};
#ifdef DEEPSEARCH_WITH_GRPC
  j["grpc"] = grpc::Version();
  j["protobuf"] = google::protobuf::internal::VersionString(GOOGLE_PROTOBUF_VERSION);
#else
  j["grpc"] = nullptr;
#endif
  return j;
}

void PrintText(const nlohmann::json& j) {
  std::cout << "deepsearch " << j["version"].get<std::string>() << " (commit "
            << j["git_commit"].get<std::string>() << ", " << j["build_type"].get<std::string>()
            << ", " << j["compiler"].get<std::string>() << ", C++" << j["cxx_standard"].get<long>()
            << ")\n";
  const auto& t = j["torch"];
  std::cout << "torch " << t["version"].get<std::string>()
            << ", CUDA: " << (t["cuda_built"].get<bool>() ? "built" : "not built")
            << (t["cuda_available"].get<bool>()
                    ? ", " + std::to_string(t["cuda_devices"].get<int>()) + " device(s)"
                    : "")
            << ", threads: " << t["intra_op_threads"].get<int>() << " intra-op / "
            << t["inter_op_threads"].get<int>() << " inter-op\n";
  const std::string blas = t["blas"].get<std::string>();
  std::cout << "BLAS: " << (blas.empty() ? "none loaded" : blas) << "\n";
  if (j["grpc"].is_null()) {
    std::cout << "gRPC: not built\n";
  } else {
    std::cout << "gRPC " << j["grpc"].get<std::string>() << ", protobuf "
              << j["protobuf"].get<std::string>() << "\n";
  }
}

}  // namespace

void AddVersionCommand(CLI::App& app, int& exit_code) {
  CLI::App* cmd = app.add_subcommand("version", "Print the version, build and runtime facts");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print one JSON object");
  cmd->callback([json, &exit_code] {
    if (absl::Status s = ConfigureTorchRuntime(RuntimeConfig{}); !s.ok()) {
      std::cerr << "deepsearch version: " << s.message() << "\n";
      exit_code = kExitFailure;
      return;
    }
    const nlohmann::json j = VersionJson();
    if (*json) {
      std::cout << j.dump(2) << "\n";
    } else {
      PrintText(j);
    }
    exit_code = kExitOk;
  });
}

}  // namespace deepsearch::cli
