#include "common/core/metrics.h"

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace deepsearch {
namespace {

TEST(MetricsTest, ExpositionTextIsExact) {
  MetricsRegistry m;
  m.GetCounter("ds_trajectories_total", "Trajectories ingested", {{"mode", "search"}})
      ->Increment(3);
  m.GetCounter("ds_trajectories_total", "Trajectories ingested", {{"mode", "rollout"}})
      ->Increment();
  m.GetGauge("ds_weight_version", "Newest weight version")->Set(12);
  Histogram* h = m.GetHistogram("ds_rpc_seconds", "RPC latency\nin seconds", {0.01, 0.1, 1},
                                {{"method", "Lease"}});
  h->Observe(0.005);
  h->Observe(0.01);  // inclusive upper bound
  h->Observe(0.5);
  h->Observe(7);
  m.GetGauge("ds_ratio", "A \\ ratio", {{"b", "x\"y"}, {"a", "line\nbreak"}})->Set(0.25);

  EXPECT_EQ(m.ExpositionText(),
            "# HELP ds_ratio A \\\\ ratio\n"
            "# TYPE ds_ratio gauge\n"
            "ds_ratio{a=\"line\\nbreak\",b=\"x\\\"y\"} 0.25\n"
            "# HELP ds_rpc_seconds RPC latency\\nin seconds\n"
            "# TYPE ds_rpc_seconds histogram\n"
            "ds_rpc_seconds_bucket{method=\"Lease\",le=\"0.01\"} 2\n"
            "ds_rpc_seconds_bucket{method=\"Lease\",le=\"0.1\"} 2\n"
            "ds_rpc_seconds_bucket{method=\"Lease\",le=\"1\"} 3\n"
            "ds_rpc_seconds_bucket{method=\"Lease\",le=\"+Inf\"} 4\n"
            "ds_rpc_seconds_sum{method=\"Lease\"} 7.515\n"
            "ds_rpc_seconds_count{method=\"Lease\"} 4\n"
            "# HELP ds_trajectories_total Trajectories ingested\n"
            "# TYPE ds_trajectories_total counter\n"
            "ds_trajectories_total{mode=\"rollout\"} 1\n"
            "ds_trajectories_total{mode=\"search\"} 3\n"
            "# HELP ds_weight_version Newest weight version\n"
            "# TYPE ds_weight_version gauge\n"
            "ds_weight_version 12\n");
}

TEST(MetricsTest, SameNameAndLabelsGiveTheSameChild) {
  MetricsRegistry m;
  Counter* a = m.GetCounter("c_total", "c", {{"x", "1"}, {"y", "2"}});
  Counter* b = m.GetCounter("c_total", "c", {{"y", "2"}, {"x", "1"}});  // order does not matter
  Counter* other = m.GetCounter("c_total", "c", {{"x", "1"}, {"y", "3"}});
  EXPECT_EQ(a, b);
  EXPECT_NE(a, other);
}

TEST(MetricsTest, FormatsSpecialValues) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(-3), "-3");
  EXPECT_EQ(FormatMetricValue(1e20), "1e+20");
  EXPECT_EQ(FormatMetricValue(0.1), "0.1");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatMetricValue(std::nan("")), "NaN");
}

TEST(MetricsTest, ConcurrentUpdatesAreNotLost) {
  MetricsRegistry m;
  Counter* c = m.GetCounter("hits_total", "hits");
  Histogram* h = m.GetHistogram("lat", "lat", {1.0});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        c->Increment();
        h->Observe(0.5);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c->Value(), 80000);
  EXPECT_EQ(h->Count(), 80000u);
  EXPECT_EQ(h->BucketCounts(), (std::vector<uint64_t>{80000, 0}));
  EXPECT_EQ(h->Sum(), 40000);
}

TEST(MetricsTest, BucketHelpers) {
  EXPECT_EQ(ExponentialBuckets(0.001, 10, 3), (std::vector<double>{0.001, 0.01, 0.1}));
  EXPECT_EQ(LinearBuckets(1, 2, 3), (std::vector<double>{1, 3, 5}));
}

TEST(MetricsDeathTest, MisuseCrashes) {
  MetricsRegistry m;
  m.GetCounter("x_total", "x");
  EXPECT_DEATH(m.GetGauge("x_total", "x"), "registered with two types");
  EXPECT_DEATH(m.GetCounter("bad-name", "x"), "invalid metric name 'bad-name'");
  EXPECT_DEATH(m.GetCounter("ok_total", "x", {{"le", "1"}}), "reserved label name 'le'");
  EXPECT_DEATH(m.GetCounter("ok_total", "x")->Increment(-1), "counter increment must be >= 0");
  EXPECT_DEATH(m.GetHistogram("h", "h", {2, 1}), "must increase strictly");
}

}  // namespace
}  // namespace deepsearch
