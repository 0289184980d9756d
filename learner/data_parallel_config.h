// The settings of a data-parallel learner (the `learner.data_parallel` section of the config
// file; learner/data_parallel.h joins the group they describe). Torch-free, so configuration
// files and the CLI build without LibTorch's headers.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "common/core/config.h"

namespace deepsearch {

struct DataParallelConfig {
  int32_t rank = 0;
  int32_t world_size = 1;                      // 1: one process, no process group
  std::string master = "127.0.0.1:29500";      // host:port of the TCPStore rank 0 hosts
  std::string backend = "gloo";                // "gloo" (CPU tensors) or "nccl" (CUDA builds only)
  absl::Duration timeout = absl::Minutes(10);  // rendezvous and every collective
  // Gloo: the network interface its sockets bind to ("eth0"); empty: the loopback address
  // when the master is on loopback, else the address this machine's hostname resolves to.
  std::string gloo_interface;

  void Bind(ConfigBinder& b);
};

struct HostPort {
  std::string host;  // without the brackets of an IPv6 address
  uint16_t port = 0;
};

// "host:port" or "[v6 address]:port"; INVALID_ARGUMENT naming data_parallel.master otherwise.
absl::StatusOr<HostPort> ParseDataParallelMaster(const std::string& master);

}  // namespace deepsearch
