// A metrics registry with Prometheus text exposition (format 0.0.4).
//
//   MetricsRegistry& m = MetricsRegistry::Default();
//   Counter* hits = m.GetCounter("deepsearch_prefix_cache_hits_total", "Prefix cache hits");
//   hits->Increment();
//   Histogram* lat = m.GetHistogram("deepsearch_rpc_seconds", "RPC latency",
//                                   ExponentialBuckets(0.001, 2, 12), {{"method", "LeaseWork"}});
//   lat->Observe(0.004);
//   std::string text = m.ExpositionText();   // served on /metrics
//
// A family is one metric name with one type and help text; each distinct set of label values
// is one child. Get* returns a pointer that stays valid for the registry's lifetime: look it
// up once, then update it on hot paths without locks (values are atomics).
//
// Threading: every method is thread-safe. Get* and ExpositionText take the registry lock;
// Counter/Gauge/Histogram updates are lock-free. A scrape taken during updates may see a
// histogram's count and sum from slightly different moments, as with every Prometheus client.
//
// Misuse (an invalid name, one name registered with two types) is a programming error and
// crashes with DS_CHECK.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace deepsearch {

// Label name/value pairs; order does not matter (they are sorted by name).
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  // Adds `amount`, which must be >= 0.
  void Increment(double amount = 1.0);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double amount) { value_.fetch_add(amount, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  // `bounds` are the buckets' inclusive upper bounds, strictly increasing; +Inf is implicit.
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);

  const std::vector<double>& bounds() const { return bounds_; }
  // Per-bucket counts (not cumulative), one more than bounds() (the +Inf bucket last).
  std::vector<uint64_t> BucketCounts() const;
  uint64_t Count() const { return count_.load(std::memory_order_relaxed); }
  double Sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0.0};
};

// `count` bounds: start, start*factor, start*factor^2, ...
std::vector<double> ExponentialBuckets(double start, double factor, int count);
// `count` bounds: start, start+width, ...
std::vector<double> LinearBuckets(double start, double width, int count);

class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The process-wide registry that servers expose.
  static MetricsRegistry& Default();

  Counter* GetCounter(std::string_view name, std::string_view help,
                      const MetricLabels& labels = {});
  Gauge* GetGauge(std::string_view name, std::string_view help, const MetricLabels& labels = {});
  Histogram* GetHistogram(std::string_view name, std::string_view help, std::vector<double> bounds,
                          const MetricLabels& labels = {});

  // Every family, sorted by name, children sorted by labels, in Prometheus text format.
  std::string ExpositionText() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    std::string help;
    std::vector<double> bounds;  // histograms only
    // Key: the rendered, sorted label set ("a=\"x\",b=\"y\""), empty for no labels.
    std::map<std::string, std::unique_ptr<Counter>> counters;
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
  };

  Family& GetFamily(std::string_view name, std::string_view help, Type type)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, Family, std::less<>> families_ ABSL_GUARDED_BY(mu_);
};

// Formats a sample value as Prometheus expects: integers without a fraction, +Inf, -Inf, NaN,
// otherwise the shortest round-trip decimal.
std::string FormatMetricValue(double value);

}  // namespace deepsearch
