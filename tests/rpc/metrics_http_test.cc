// The Prometheus endpoint: /metrics serves the registry's exposition after the refresh hook,
// /healthz answers, bad addresses are refused with a message naming the key.
#include "common/rpc/metrics_http.h"

#include <httplib.h>

#include <atomic>

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
  auto none = StartMetricsEndpoint(MetricsConfig{}, "test", &registry, nullptr);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nullptr);
}

}  // namespace
}  // namespace deepsearch::rpc
