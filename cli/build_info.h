// Facts about this build, filled in at build time (see cmake/build_info.cmake).
#pragma once

#include <string_view>

namespace deepsearch {

struct BuildInfo {
  std::string_view version;     // project version, "0.1.0"
  std::string_view git_commit;  // "a1b2c3d" (+ "-dirty"), or "unknown" outside a checkout
  std::string_view build_type;  // "Release"
  std::string_view compiler;    // "GNU 12.2.0"
  long cxx_standard;            // 202002
  bool with_grpc;
};

const BuildInfo& GetBuildInfo();

}  // namespace deepsearch
