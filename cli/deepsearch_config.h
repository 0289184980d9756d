// The root of the configuration file every DeepSearch binary reads. Sections join it as their
// components land; `deepsearch config show` prints it with every default and its help text.
#pragma once

#include "common/core/config.h"
#include "common/core/runtime_config.h"

namespace deepsearch {

struct DeepSearchConfig {
  LoggingConfig logging;
  RuntimeConfig runtime;
  RpcConfig rpc;

  void Bind(ConfigBinder& b) {
    b.Section("logging", logging, "Logging");
    b.Section("runtime", runtime, "Process runtime");
    b.Section("rpc", rpc, "gRPC transport and security, shared by every server and client");
  }
};

}  // namespace deepsearch
