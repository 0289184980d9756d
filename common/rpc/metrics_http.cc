#include "common/rpc/metrics_http.h"

#include <httplib.h>

#include <chrono>
#include <thread>
#include <utility>

#include <sys/socket.h>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include "common/core/logging.h"
#include "common/core/status.h"
#include "common/rpc/server.h"

namespace deepsearch::rpc {

struct MetricsHttpServer::Impl {
  std::unique_ptr<httplib::Server> server;  // an httplib::SSLServer for HTTPS
  std::string host;
  int port = 0;
  std::thread thread;
};

MetricsHttpServer::MetricsHttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsHttpServer::~MetricsHttpServer() {
  impl_->server->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int MetricsHttpServer::port() const { return impl_->port; }
std::string MetricsHttpServer::address() const {
  return absl::StrCat(impl_->host, ":", impl_->port);
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen_address, MetricsRegistry* registry, std::function<void()> refresh,
    const TlsConfig* tls) {
  const size_t colon = listen_address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(listen_address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics.listen_address: expected host:port, got \"", listen_address, "\""));
  }
  auto impl = std::make_unique<Impl>();
  if (tls == nullptr) {
    impl->server = std::make_unique<httplib::Server>();
  } else {
    if (tls->cert_file.empty() || tls->key_file.empty()) {
      return absl::InvalidArgumentError(
          "metrics.tls: HTTPS needs rpc.tls.cert_file and rpc.tls.key_file");
    }
    // Read them here first, so that a missing file is named (httplib only says "invalid").
    DS_RETURN_IF_ERROR(ReadPemFile("rpc.tls.cert_file", tls->cert_file).status());
    DS_RETURN_IF_ERROR(ReadPemFile("rpc.tls.key_file", tls->key_file).status());
    const bool check_clients = tls->require_client_cert;
    if (check_clients) DS_RETURN_IF_ERROR(ReadPemFile("rpc.tls.ca_file", tls->ca_file).status());
    auto https =
        std::make_unique<httplib::SSLServer>(tls->cert_file.c_str(), tls->key_file.c_str(),
                                             check_clients ? tls->ca_file.c_str() : nullptr);
    if (!https->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat("metrics.tls: cannot set up HTTPS with ",
                                                     tls->cert_file, " and ", tls->key_file));
    }
    impl->server = std::move(https);
  }
  impl->host = listen_address.substr(0, colon);
  if (impl->host.size() >= 2 && impl->host.front() == '[') {
    impl->host = impl->host.substr(1, impl->host.size() - 2);
  }
  // httplib's default also sets SO_REUSEPORT, which would let a second service bind the same
  // port silently: SO_REUSEADDR only.
  impl->server->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  impl->server->Get("/metrics", [registry, refresh](const httplib::Request&,
                                                    httplib::Response& response) {
    if (refresh) refresh();
    response.set_content(registry->ExpositionText(), "text/plain; version=0.0.4; charset=utf-8");
  });
  impl->server->Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok\n", "text/plain");
  });
  if (port == 0) {
    impl->port = impl->server->bind_to_any_port(impl->host);
  } else {
    impl->port = impl->server->bind_to_port(impl->host, port) ? port : -1;
  }
  if (impl->port <= 0) {
    return absl::UnavailableError(absl::StrCat("metrics.listen_address: cannot listen on ",
                                               listen_address, " (address in use or invalid)"));
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->server->listen_after_bind(); });
  // stop() only takes effect once the server runs: wait for that, so that a server destroyed
  // right away does not leave its thread listening.
  while (!impl->server->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return std::unique_ptr<MetricsHttpServer>(new MetricsHttpServer(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> StartMetricsEndpoint(
    const MetricsConfig& config, const TlsConfig& tls, const std::string& service,
    MetricsRegistry* registry, std::function<void()> refresh) {
  if (config.listen_address.empty()) return std::unique_ptr<MetricsHttpServer>();
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server = MetricsHttpServer::Start(
      config.listen_address, registry, std::move(refresh), config.tls ? &tls : nullptr);
  if (server.ok()) {
    log::Info("{}: metrics on {}://{}/metrics", service, config.tls ? "https" : "http",
              (*server)->address());
  }
  return server;
}

}  // namespace deepsearch::rpc
