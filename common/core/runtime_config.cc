#include "common/core/runtime_config.h"

#include <malloc.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace deepsearch {

void LoggingConfig::Bind(ConfigBinder& b) {
  b.Enum("level", level,
         {{"debug", LogLevel::kDebug},
          {"info", LogLevel::kInfo},
          {"warning", LogLevel::kWarning},
          {"error", LogLevel::kError},
          {"off", LogLevel::kOff}},
         "Minimum level logged; DEEPSEARCH_LOG_LEVEL overrides it");
}

absl::Status ConfigureMalloc(const RuntimeConfig& config) {
  if (!config.keep_freed_memory) return absl::OkStatus();
  // No mmapped blocks; trim the top of the heap only beyond 2 GiB; grow it 256 MiB at a time;
  // one arena for every thread. Each further arena is a separate mmapped heap of at most
  // 64 MiB that glibc shrinks when its top is free, so a thread that allocates large buffers
  // (a gRPC stream receiving weights) would fault its memory in again on every use; with one
  // arena the freed blocks of any thread are reused by all (2x on the weight fan-out).
  if (::mallopt(M_MMAP_MAX, 0) == 0 || ::mallopt(M_TRIM_THRESHOLD, INT_MAX) == 0 ||
      ::mallopt(M_TOP_PAD, 256 << 20) == 0 || ::mallopt(M_ARENA_MAX, 1) == 0) {
    return absl::InternalError("runtime.keep_freed_memory: glibc's mallopt refused a setting");
  }
  return absl::OkStatus();
}

void RuntimeConfig::Bind(ConfigBinder& b) {
  b.Field("torch_threads", torch_threads, "Torch intra-op threads per process").Range(1, 256);
  b.Field("torch_interop_threads", torch_interop_threads, "Torch inter-op threads per process")
      .Range(1, 256);
  b.Field("keep_freed_memory", keep_freed_memory,
          "Torch processes keep freed memory for reuse instead of returning it to the system "
          "(faster training steps; the process keeps its peak memory)");
}

void TlsConfig::Bind(ConfigBinder& b) {
  b.Field("enabled", enabled, "Serve and connect over TLS");
  b.Field("cert_file", cert_file, "PEM certificate chain presented by this process");
  b.Field("key_file", key_file, "PEM private key of cert_file");
  b.Field("ca_file", ca_file, "PEM CA bundle that verifies the peer (empty: system roots)");
  b.Field("require_client_cert", require_client_cert,
          "Servers demand client certificates (mutual TLS)");
  b.Field("server_name_override", server_name_override,
          "Clients: name expected in the server certificate");
  b.Require(!require_client_cert || enabled, "require_client_cert", "needs enabled: true");
  b.Require(!require_client_cert || !ca_file.empty(), "require_client_cert",
            "needs ca_file to verify client certificates");
  b.Require(cert_file.empty() == key_file.empty(), "key_file",
            "cert_file and key_file must be set together");
}

void AuthConfig::Bind(ConfigBinder& b) {
  b.Field("token_file", token_file,
          "File holding this process's bearer token (empty: use token_env)");
  b.Field("token_env", token_env,
          "Environment variable holding the token when token_file is empty");
  b.Field("actor_tokens_file", actor_tokens_file,
          "Servers: tokens of the actors, one per line (any role file set: role-scoped auth)");
  b.Field("learner_tokens_file", learner_tokens_file, "Servers: tokens of the learner ranks");
  b.Field("client_tokens_file", client_tokens_file, "Servers: tokens of the job clients");
  b.Field("admin_tokens_file", admin_tokens_file, "Servers: tokens of the operators");
  b.Field("reload_interval", reload_interval,
          "How often token files are re-read (tokens rotate without a restart)")
      .Min(absl::ZeroDuration());
}

void RpcConfig::Bind(ConfigBinder& b) {
  b.Field("max_receive_message_bytes", max_receive_message_bytes, "Largest message accepted")
      .Range(1ll << 10, (1ll << 31) - 1);
  b.Field("max_send_message_bytes", max_send_message_bytes, "Largest message sent")
      .Range(1ll << 10, (1ll << 31) - 1);
  b.Field("keepalive_time", keepalive_time, "Interval between HTTP/2 keepalive pings").Positive();
  b.Field("keepalive_timeout", keepalive_timeout, "How long to wait for a ping's answer")
      .Positive();
  b.Field("reconnect_backoff_max", reconnect_backoff_max,
          "Clients: longest wait between attempts to reach a peer that is down")
      .Positive();
  b.Field("max_streams_per_caller", max_streams_per_caller,
          "Servers: streams one caller (role and host) may hold open; 0: no limit")
      .Min(0);
  b.Section("tls", tls, "Transport security");
  b.Section("auth", auth, "Bearer-token authentication");
}

std::string ReadAuthTokenFromEnv(const AuthConfig& auth) {
  if (auth.token_env.empty()) return std::string();
  const char* value = std::getenv(auth.token_env.c_str());
  if (value == nullptr) return std::string();
  return std::string(absl::StripAsciiWhitespace(value));
}

}  // namespace deepsearch
