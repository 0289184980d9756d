#include "common/rpc/server.h"

#include <chrono>
#include <fstream>
#include <mutex>
#include <sstream>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "common/core/logging.h"
#include "common/core/status.h"

namespace deepsearch::rpc {
namespace {

void InitGrpcGlobalsOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  });
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsConfig& tls) {
  if (!tls.enabled) return grpc::InsecureServerCredentials();
  if (tls.cert_file.empty() || tls.key_file.empty()) {
    return absl::InvalidArgumentError("rpc.tls: a TLS server needs cert_file and key_file");
  }
  grpc::SslServerCredentialsOptions options;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  DS_ASSIGN_OR_RETURN(pair.cert_chain, ReadPemFile("rpc.tls.cert_file", tls.cert_file));
  DS_ASSIGN_OR_RETURN(pair.private_key, ReadPemFile("rpc.tls.key_file", tls.key_file));
  options.pem_key_cert_pairs.push_back(std::move(pair));
  if (!tls.ca_file.empty()) {
    DS_ASSIGN_OR_RETURN(options.pem_root_certs, ReadPemFile("rpc.tls.ca_file", tls.ca_file));
  }
  options.client_certificate_request =
      tls.require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                              : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
  return grpc::SslServerCredentials(options);
}

int ClampToInt(int64_t v) {
  return static_cast<int>(std::min<int64_t>(v, std::numeric_limits<int>::max()));
}

}  // namespace

absl::StatusOr<std::string> ReadPemFile(std::string_view key, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(std::string(key), " ", path, ": cannot open"));
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(key), " ", path, ": not a PEM file"));
  }
  return text.str();
}

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const ServerOptions& options, const std::vector<ServedService>& services) {
  InitGrpcGlobalsOnce();
  DS_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                      MakeServerCredentials(options.rpc.tls));

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen_address, credentials, &port);
  builder.SetMaxReceiveMessageSize(ClampToInt(options.rpc.max_receive_message_bytes));
  builder.SetMaxSendMessageSize(ClampToInt(options.rpc.max_send_message_bytes));
  const int64_t keepalive_ms = absl::ToInt64Milliseconds(options.rpc.keepalive_time);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, ClampToInt(keepalive_ms));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             ClampToInt(absl::ToInt64Milliseconds(options.rpc.keepalive_timeout)));
  // Accept the clients' pings (they use the same keepalive_time) without calling them abuse.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             ClampToInt(std::max<int64_t>(keepalive_ms / 2, 1000)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // A second server on a taken port must fail, not share it through SO_REUSEPORT.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);

  std::vector<std::string> names;
  for (const ServedService& s : services) {
    DS_CHECK(s.service != nullptr) << "null service " << s.name;
    builder.RegisterService(s.service);
    names.push_back(s.name);
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return absl::UnavailableError(absl::StrCat(options.name, ": cannot listen on ",
                                               options.listen_address,
                                               " (address in use, or not a valid host:port)"));
  }
  auto result = std::unique_ptr<GrpcServer>(new GrpcServer(
      options.name, options.listen_address, port, std::move(server), std::move(names)));
  result->SetServing(true);
  log::Info("{} serving on {} (port {}, tls {}, {} service(s))", options.name,
            options.listen_address, port, options.rpc.tls.enabled ? "on" : "off", services.size());
  return result;
}

GrpcServer::GrpcServer(std::string name, std::string listen_address, int port,
                       std::unique_ptr<grpc::Server> server, std::vector<std::string> service_names)
    : name_(std::move(name)),
      listen_address_(std::move(listen_address)),
      port_(port),
      server_(std::move(server)),
      service_names_(std::move(service_names)) {}

GrpcServer::~GrpcServer() { Shutdown(absl::ZeroDuration()); }

std::string GrpcServer::dial_address() const {
  const size_t colon = listen_address_.rfind(':');
  std::string host =
      colon == std::string::npos ? listen_address_ : listen_address_.substr(0, colon);
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") host = "127.0.0.1";
  return absl::StrCat(host, ":", port_);
}

void GrpcServer::SetServing(bool serving) {
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus(serving);
  for (const std::string& name : service_names_) health->SetServingStatus(name, serving);
}

void GrpcServer::Shutdown(absl::Duration grace) {
  std::call_once(shutdown_once_, [&] {
    SetServing(false);
    const auto deadline = std::chrono::system_clock::now() +
                          std::chrono::milliseconds(absl::ToInt64Milliseconds(grace));
    server_->Shutdown(deadline);
    log::Info("{} stopped", name_);
  });
}

void GrpcServer::Wait() { server_->Wait(); }

}  // namespace deepsearch::rpc
