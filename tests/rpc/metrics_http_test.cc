// The Prometheus endpoint: /metrics serves the registry's exposition after the refresh hook,
// /healthz answers, bad addresses are refused with a message naming the key.
#include "common/rpc/metrics_http.h"

#include <httplib.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace deepsearch::rpc {
namespace {

using ::testing::HasSubstr;

TEST(MetricsHttpServerTest, ServesTheRegistryAfterRefreshing) {
  MetricsRegistry registry;
  Gauge* steps = registry.GetGauge("deepsearch_test_steps", "Steps taken");
  registry.GetCounter("deepsearch_test_requests_total", "Requests")->Increment(3);
  std::atomic<int> refreshes{0};
  auto server =
      MetricsHttpServer::Start("127.0.0.1:0", &registry, [&] { steps->Set(41 + ++refreshes); });
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);
  EXPECT_EQ((*server)->address(), "127.0.0.1:" + std::to_string((*server)->port()));

  httplib::Client client("127.0.0.1", (*server)->port());
  httplib::Result metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics) << httplib::to_string(metrics.error());
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->get_header_value("Content-Type"), HasSubstr("version=0.0.4"));
  EXPECT_THAT(metrics->body, HasSubstr("# TYPE deepsearch_test_steps gauge\n"));
  EXPECT_THAT(metrics->body, HasSubstr("deepsearch_test_steps 42\n"));
  EXPECT_THAT(metrics->body, HasSubstr("deepsearch_test_requests_total 3\n"));
  metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body, HasSubstr("deepsearch_test_steps 43\n"));
  EXPECT_EQ(refreshes.load(), 2);

  httplib::Result health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");
  EXPECT_EQ(client.Get("/nothing")->status, 404);
}

TEST(MetricsHttpServerTest, RefusesBadAddressesAndTakenPorts) {
  MetricsRegistry registry;
  for (const char* bad : {"", "9090", "host:", "host:x", "host:70000"}) {
    auto server = MetricsHttpServer::Start(bad, &registry);
    ASSERT_FALSE(server.ok()) << bad;
    EXPECT_THAT(server.status().message(), HasSubstr("metrics.listen_address")) << bad;
  }
  auto first = MetricsHttpServer::Start("127.0.0.1:0", &registry);
  ASSERT_TRUE(first.ok());
  auto second =
      MetricsHttpServer::Start("127.0.0.1:" + std::to_string((*first)->port()), &registry);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("cannot listen"));
  // No endpoint configured: nothing is started.
  auto none = StartMetricsEndpoint(MetricsConfig{}, TlsConfig{}, "test", &registry, nullptr);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nullptr);
}

std::string DataPath(const std::string& relative) {
  const char* root = std::getenv("DEEPSEARCH_SOURCE_DIR");
  return std::string(root != nullptr ? root : ".") + "/tests/data/" + relative;
}

// metrics.tls: HTTPS with the gRPC port's certificate; with require_client_cert, a scraper
// without a client certificate signed by the CA gets nothing.
TEST(MetricsHttpServerTest, ServesHttpsWithTheRpcCertificates) {
  MetricsRegistry registry;
  registry.GetCounter("deepsearch_test_requests_total", "Requests")->Increment(5);
  TlsConfig tls;
  tls.enabled = true;
  tls.cert_file = DataPath("tls/server.pem");
  tls.key_file = DataPath("tls/server.key");
  tls.ca_file = DataPath("tls/ca.pem");
  MetricsConfig config{.listen_address = "127.0.0.1:0", .tls = true};
  auto server = StartMetricsEndpoint(config, tls, "test", &registry, nullptr);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();

  httplib::SSLClient https("127.0.0.1", port);
  https.set_ca_cert_path(tls.ca_file.c_str());
  https.enable_server_certificate_verification(true);
  httplib::Result metrics = https.Get("/metrics");
  ASSERT_TRUE(metrics) << httplib::to_string(metrics.error());
  EXPECT_THAT(metrics->body, HasSubstr("deepsearch_test_requests_total 5\n"));
  httplib::Client plain("127.0.0.1", port);
  EXPECT_FALSE(plain.Get("/metrics"));  // no plain HTTP on an HTTPS port
  server->reset();

  tls.require_client_cert = true;
  server = StartMetricsEndpoint(config, tls, "test", &registry, nullptr);
  ASSERT_TRUE(server.ok()) << server.status();
  httplib::SSLClient anonymous("127.0.0.1", (*server)->port());
  anonymous.set_ca_cert_path(tls.ca_file.c_str());
  EXPECT_FALSE(anonymous.Get("/metrics"));
  httplib::SSLClient known("127.0.0.1", (*server)->port(), DataPath("tls/client.pem"),
                           DataPath("tls/client.key"));
  known.set_ca_cert_path(tls.ca_file.c_str());
  metrics = known.Get("/metrics");
  ASSERT_TRUE(metrics) << httplib::to_string(metrics.error());
  EXPECT_EQ(metrics->status, 200);

  tls.cert_file = "/nonexistent/cert.pem";
  EXPECT_EQ(StartMetricsEndpoint(config, tls, "test", &registry, nullptr).status().message(),
            "rpc.tls.cert_file /nonexistent/cert.pem: cannot open");
}

}  // namespace
}  // namespace deepsearch::rpc
