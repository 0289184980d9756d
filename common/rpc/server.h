// The gRPC server every DeepSearch binary runs, and the bearer-token check its services use.
//
//   DS_ASSIGN_OR_RETURN(ServerAuth auth, ServerAuth::FromConfig(config.rpc.auth));
//   LearnerServiceImpl learner(..., auth);
//   DS_ASSIGN_OR_RETURN(auto server, GrpcServer::Start(
//       {.name = "learner", .listen_address = "0.0.0.0:50051", .rpc = config.rpc},
//       {{&learner, "deepsearch.v1.LearnerService"}}));
//   server->Wait();
//
// Every server also serves grpc.health.v1.Health (each registered service and "" report
// SERVING until SetServing(false)) and server reflection (so `buf curl` and grpcurl work
// without .proto files), caps message sizes, sends HTTP/2 keepalives, and listens with TLS
// (optionally mutual) when rpc.tls.enabled.
//
// Authentication: gRPC cannot attach a token check to plaintext servers, so each service
// handler calls ServerAuth::Check (common/rpc/auth.h) first; health checks stay open for
// probes.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/server.h>
#include <grpcpp/server_context.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "common/core/runtime_config.h"
#include "common/rpc/auth.h"

namespace deepsearch::rpc {

struct ServerOptions {
  // Shown in logs ("learner").
  std::string name;
  // host:port; port 0 picks a free port (see GrpcServer::port()).
  std::string listen_address = "127.0.0.1:0";
  RpcConfig rpc;
};

// A service to register, with its fully qualified name for health reporting.
struct ServedService {
  grpc::Service* service;  // not owned; must outlive the server
  std::string name;        // "deepsearch.v1.LearnerService"
};

class GrpcServer {
 public:
  // Builds, binds and starts the server. Errors: unreadable TLS files (named), an address
  // that cannot be bound. Does not block.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const ServerOptions& options, const std::vector<ServedService>& services);

  ~GrpcServer();  // Shutdown with no grace period, if not done already
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // The bound port.
  int port() const { return port_; }
  // An address clients on this host can dial ("127.0.0.1:PORT" for a wildcard listener).
  std::string dial_address() const;

  // Marks every registered service (and the server as a whole) SERVING or NOT_SERVING in the
  // health service: load balancers stop routing before a graceful shutdown. Thread-safe.
  void SetServing(bool serving);

  // Stops accepting calls and waits up to `grace` for calls in flight, then cancels the rest.
  // Thread-safe; later calls do nothing.
  void Shutdown(absl::Duration grace);
  // Blocks until Shutdown has completed (from another thread or a signal handler's thread).
  void Wait();

 private:
  GrpcServer(std::string name, std::string listen_address, int port,
             std::unique_ptr<grpc::Server> server, std::vector<std::string> service_names);

  const std::string name_;
  const std::string listen_address_;
  const int port_;
  std::unique_ptr<grpc::Server> server_;
  const std::vector<std::string> service_names_;
  std::once_flag shutdown_once_;
};

// Reads a whole file (for PEM material); the error names the config key and path.
absl::StatusOr<std::string> ReadPemFile(std::string_view key, const std::string& path);

}  // namespace deepsearch::rpc
