#include "learner/data_parallel_config.h"

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace deepsearch {

absl::StatusOr<HostPort> ParseDataParallelMaster(const std::string& master) {
  const size_t colon = master.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == master.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("data_parallel.master: expected host:port, got \"", master, "\""));
  }
  HostPort out;
  out.host = master.substr(0, colon);
  if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  uint32_t port = 0;
  if (!absl::SimpleAtoi(master.substr(colon + 1), &port) || port == 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data_parallel.master: expected a port in [1, 65535] after the last ':', got \"", master,
        "\""));
  }
  out.port = static_cast<uint16_t>(port);
  return out;
}

void DataParallelConfig::Bind(ConfigBinder& b) {
  b.Field("rank", rank, "This process's rank, 0 to world_size - 1 (rank 0 hosts the store)").Min(0);
  b.Field("world_size", world_size, "Learner processes in the group; 1: no process group")
      .Range(1, 1 << 16);
  b.Field("master", master, "host:port of the c10d TCPStore that rank 0 hosts").NonEmpty();
  b.Field("backend", backend, "Collectives: gloo (CPU tensors) or nccl (CUDA builds)").NonEmpty();
  b.Field("timeout", timeout, "Joining (all ranks up) and per-collective timeout")
      .Min(absl::Milliseconds(1));
  b.Field("gloo_interface", gloo_interface,
          "Network interface for Gloo's sockets (\"eth0\"); empty: loopback for a loopback "
          "master, else this host's resolved address");
  b.Require(rank < world_size, "rank", "must be less than world_size");
  b.Require(backend == "gloo" || backend == "nccl", "backend", "must be \"gloo\" or \"nccl\"");
  b.Require(ParseDataParallelMaster(master).ok(), "master",
            "must be host:port with a port in [1, 65535]");
}

}  // namespace deepsearch
