// Config sections every binary shares: logging, process runtime (threads), and the RPC
// security and transport settings of the deployment (TLS material, bearer token, message
// limits). Plain data: the gRPC layer (common/rpc) and the model layer apply them.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "common/core/config.h"
#include "common/core/logging.h"

namespace deepsearch {

struct LoggingConfig {
  LogLevel level = LogLevel::kInfo;

  void Bind(ConfigBinder& b);
};

struct RuntimeConfig {
  // Torch intra-op threads per process. One is fastest on small CPU machines: a second
  // thread costs milliseconds of synchronisation per op when another process is busy.
  int32_t torch_threads = 1;
  int32_t torch_interop_threads = 1;
  // Keep freed memory in the process for reuse (see ConfigureMalloc).
  bool keep_freed_memory = true;

  void Bind(ConfigBinder& b);
};

// Applies runtime.keep_freed_memory to glibc's malloc: every block from the heap, never a
// private mmap that is unmapped when freed, a top of heap that is not trimmed, and one arena
// for all threads (other arenas are heaps glibc shrinks whenever their top is free). Large
// buffers (ATen's tensors, a weight version's payload, gRPC messages) are then reused memory
// after their first use instead of fresh pages that fault in 4 KiB at a time on every
// training step or every weight version (docs/BENCHMARKS.md, "Tree-GRPO training" and "Cache
// service"). The cost: the process keeps its peak memory. Call once at start-up, before
// other threads allocate.
absl::Status ConfigureMalloc(const RuntimeConfig& config);

struct TlsConfig {
  bool enabled = false;
  // PEM files. A server needs cert_file and key_file; a client needs ca_file (or the system
  // roots when empty). With require_client_cert both sides present certificates (mutual TLS).
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
  bool require_client_cert = false;
  // Clients: the name expected in the server's certificate when it differs from the target
  // host (tests, IP-address targets).
  std::string server_name_override;

  void Bind(ConfigBinder& b);
};

struct AuthConfig {
  // This process's own token, sent on every call it makes: the first line of token_file
  // (Kubernetes mounts Secrets as files) or, when that is unset, the value of the environment
  // variable named by token_env. With no role files below, servers accept exactly this
  // token from every caller ("shared" mode); no token at all: no auth.
  std::string token_file;
  std::string token_env = "DEEPSEARCH_AUTH_TOKEN";
  // Servers, role-scoped mode (any of these set): the tokens each role's callers present,
  // one per line; a call's token names its role and each RPC accepts only some roles
  // (common/rpc/auth.h). A role without a file has no callers.
  std::string actor_tokens_file;
  std::string learner_tokens_file;
  std::string client_tokens_file;
  std::string admin_tokens_file;
  // Token files are re-read at most this often, so tokens rotate without a restart.
  absl::Duration reload_interval = absl::Seconds(10);

  void Bind(ConfigBinder& b);
};

struct RpcConfig {
  // Message size caps; big payloads (weights) travel as streams of smaller chunks.
  int64_t max_receive_message_bytes = 64ll << 20;
  int64_t max_send_message_bytes = 64ll << 20;
  // HTTP/2 keepalive pings, so dead peers are noticed through NATs and load balancers.
  absl::Duration keepalive_time = absl::Seconds(30);
  absl::Duration keepalive_timeout = absl::Seconds(10);
  // Clients: gRPC's own reconnection backoff (from 100 ms, doubling); its default ceiling of
  // two minutes would leave an actor idle long after a restarted learner is back.
  absl::Duration reconnect_backoff_max = absl::Seconds(5);
  // Servers: streams one caller (its role and host) may hold open at once, over every
  // streaming method of the process; 0: no limit.
  int32_t max_streams_per_caller = 64;
  TlsConfig tls;
  AuthConfig auth;

  void Bind(ConfigBinder& b);
};

// The token in the environment variable auth.token_env names, surrounding whitespace removed;
// empty when unset. (Token files are read, and re-read, by common/rpc/auth.h's TokenFile.)
std::string ReadAuthTokenFromEnv(const AuthConfig& auth);

}  // namespace deepsearch
