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

namespace deepsearch::rpc {

struct MetricsHttpServer::Impl {
  httplib::Server server;
  std::string host;
  int port = 0;
  std::thread thread;
};

MetricsHttpServer::MetricsHttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsHttpServer::~MetricsHttpServer() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int MetricsHttpServer::port() const { return impl_->port; }
std::string MetricsHttpServer::address() const {
  return absl::StrCat(impl_->host, ":", impl_->port);
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen_address, MetricsRegistry* registry, std::function<void()> refresh) {
  const size_t colon = listen_address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(listen_address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics.listen_address: expected host:port, got \"", listen_address, "\""));
  }
  auto impl = std::make_unique<Impl>();
  impl->host = listen_address.substr(0, colon);
  if (impl->host.size() >= 2 && impl->host.front() == '[') {
    impl->host = impl->host.substr(1, impl->host.size() - 2);
  }
  // httplib's default also sets SO_REUSEPORT, which would let a second service bind the same
  // port silently: SO_REUSEADDR only.
  impl->server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  impl->server.Get("/metrics", [registry, refresh](const httplib::Request&,
                                                   httplib::Response& response) {
    if (refresh) refresh();
    response.set_content(registry->ExpositionText(), "text/plain; version=0.0.4; charset=utf-8");
  });
  impl->server.Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok\n", "text/plain");
  });
  if (port == 0) {
    impl->port = impl->server.bind_to_any_port(impl->host);
  } else {
    impl->port = impl->server.bind_to_port(impl->host, port) ? port : -1;
  }
  if (impl->port <= 0) {
    return absl::UnavailableError(absl::StrCat("metrics.listen_address: cannot listen on ",
                                               listen_address, " (address in use or invalid)"));
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->server.listen_after_bind(); });
  // stop() only takes effect once the server runs: wait for that, so that a server destroyed
  // right away does not leave its thread listening.
  while (!impl->server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return std::unique_ptr<MetricsHttpServer>(new MetricsHttpServer(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> StartMetricsEndpoint(
    const MetricsConfig& config, const std::string& service, MetricsRegistry* registry,
    std::function<void()> refresh) {
  if (config.listen_address.empty()) return std::unique_ptr<MetricsHttpServer>();
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start(config.listen_address, registry, std::move(refresh));
  if (server.ok()) {
    log::Info("{}: metrics on http://{}/metrics", service, (*server)->address());
  }
  return server;
}

}  // namespace deepsearch::rpc
