// The metrics endpoint every DeepSearch service serves beside its gRPC port: Prometheus text
// exposition (format 0.0.4) of a MetricsRegistry over plain HTTP, with cpp-httplib (Debian's
// libcpp-httplib).
//
//   GET /metrics   the registry's ExpositionText(), after `refresh` has updated the gauges
//                  that mirror a component's own counters;
//   GET /healthz   "ok" (liveness for scrapers and probes that do not speak gRPC).
//
// Configured by the `metrics` section (listen_address; empty: no endpoint; tls: HTTPS with
// the gRPC port's certificate and client check). `deepsearch run` binds it to 127.0.0.1.
// Every scrape runs on the server's own thread pool; `refresh` must be thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

#include "common/core/config.h"
#include "common/core/metrics.h"
#include "common/core/runtime_config.h"

namespace deepsearch::rpc {

struct MetricsConfig {
  std::string listen_address;  // host:port; empty: no metrics endpoint
  // Serve HTTPS with the certificate and key of rpc.tls, and require a client certificate
  // signed by rpc.tls.ca_file when rpc.tls.require_client_cert (as the gRPC port does).
  bool tls = false;

  void Bind(ConfigBinder& b) {
    b.Field("listen_address", listen_address,
            "host:port of the Prometheus endpoint (GET /metrics, /healthz); empty: none");
    b.Field("tls", tls, "Serve HTTPS with rpc.tls's certificate (and its client check)");
  }
};

class MetricsHttpServer {
 public:
  // Binds `listen_address` (port 0: any free port) and serves until destroyed. Errors: an
  // address that does not parse or cannot be bound, named.
  // `tls`: serve HTTPS with its cert_file and key_file (client certificates required and
  // checked against ca_file when require_client_cert); null: plain HTTP.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& listen_address, MetricsRegistry* registry,
      std::function<void()> refresh = nullptr, const TlsConfig* tls = nullptr);
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  int port() const;
  // "host:port" as bound.
  std::string address() const;

 private:
  struct Impl;
  explicit MetricsHttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Starts the endpoint of `config` (nullptr when none is configured; with `tls`'s material
// when config.tls) and logs where it serves.
absl::StatusOr<std::unique_ptr<MetricsHttpServer>> StartMetricsEndpoint(
    const MetricsConfig& config, const TlsConfig& tls, const std::string& service,
    MetricsRegistry* registry, std::function<void()> refresh);

}  // namespace deepsearch::rpc
