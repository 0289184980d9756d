#include "common/core/metrics.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "common/core/logging.h"

namespace deepsearch {
namespace {

bool ValidName(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
    const bool digit = c >= '0' && c <= '9';
    if (!(alpha || (digit && i > 0))) return false;
  }
  return true;
}

// Escapes a label value: backslash, double quote and line feed.
std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Escapes HELP text: backslash and line feed.
std::string EscapeHelp(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// The canonical label key: sorted by name, rendered as in the exposition.
std::string LabelKey(MetricLabels labels) {
  std::sort(labels.begin(), labels.end());
  std::vector<std::string> parts;
  parts.reserve(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    const auto& [name, value] = labels[i];
    DS_CHECK(ValidName(name, /*allow_colon=*/false) && name.rfind("__", 0) != 0)
        << "invalid metric label name '" << name << "'";
    DS_CHECK(name != "le" && name != "quantile") << "reserved label name '" << name << "'";
    DS_CHECK(i == 0 || labels[i - 1].first != name) << "duplicate label '" << name << "'";
    parts.push_back(absl::StrCat(name, "=\"", EscapeLabelValue(value), "\""));
  }
  return absl::StrJoin(parts, ",");
}

std::string WithLabels(std::string_view name, std::string_view suffix, const std::string& key,
                       const std::string& extra = "") {
  std::string labels = key;
  if (!extra.empty()) labels = labels.empty() ? extra : absl::StrCat(labels, ",", extra);
  if (labels.empty()) return absl::StrCat(std::string(name), std::string(suffix));
  return absl::StrCat(std::string(name), std::string(suffix), "{", labels, "}");
}

}  // namespace

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  return fmt::format("{}", value);
}

void Counter::Increment(double amount) {
  DS_CHECK(amount >= 0) << "counter increment must be >= 0, got " << amount;
  value_.fetch_add(amount, std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    DS_CHECK(std::isfinite(bounds_[i])) << "histogram bound " << i << " is not finite";
    DS_CHECK(i == 0 || bounds_[i - 1] < bounds_[i]) << "histogram bounds must increase strictly";
  }
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  // Bucket i holds values in (bounds[i-1], bounds[i]]; lower_bound finds the first bound >= v.
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) -
                                       bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::BucketCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  for (size_t i = 0; i < out.size(); ++i) out[i] = buckets_[i].load(std::memory_order_relaxed);
  return out;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  DS_CHECK(start > 0 && factor > 1 && count >= 1)
      << "ExponentialBuckets(" << start << ", " << factor << ", " << count << ")";
  std::vector<double> out;
  out.reserve(static_cast<size_t>(count));
  double b = start;
  for (int i = 0; i < count; ++i, b *= factor) out.push_back(b);
  return out;
}

std::vector<double> LinearBuckets(double start, double width, int count) {
  DS_CHECK(width > 0 && count >= 1)
      << "LinearBuckets(" << start << ", " << width << ", " << count << ")";
  std::vector<double> out;
  out.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) out.push_back(start + width * i);
  return out;
}

MetricsRegistry& MetricsRegistry::Default() {
  static auto* registry = new MetricsRegistry();
  return *registry;
}

MetricsRegistry::Family& MetricsRegistry::GetFamily(std::string_view name, std::string_view help,
                                                    Type type) {
  DS_CHECK(ValidName(name, /*allow_colon=*/true)) << "invalid metric name '" << name << "'";
  auto it = families_.find(name);
  if (it == families_.end()) {
    it =
        families_.emplace(std::string(name), Family{type, std::string(help), {}, {}, {}, {}}).first;
  }
  DS_CHECK(it->second.type == type) << "metric '" << name << "' registered with two types";
  return it->second;
}

Counter* MetricsRegistry::GetCounter(std::string_view name, std::string_view help,
                                     const MetricLabels& labels) {
  const std::string key = LabelKey(labels);
  absl::MutexLock lock(&mu_);
  auto& slot = GetFamily(name, help, Type::kCounter).counters[key];
  if (!slot) slot = std::make_unique<Counter>();
  return slot.get();
}

Gauge* MetricsRegistry::GetGauge(std::string_view name, std::string_view help,
                                 const MetricLabels& labels) {
  const std::string key = LabelKey(labels);
  absl::MutexLock lock(&mu_);
  auto& slot = GetFamily(name, help, Type::kGauge).gauges[key];
  if (!slot) slot = std::make_unique<Gauge>();
  return slot.get();
}

Histogram* MetricsRegistry::GetHistogram(std::string_view name, std::string_view help,
                                         std::vector<double> bounds, const MetricLabels& labels) {
  const std::string key = LabelKey(labels);
  absl::MutexLock lock(&mu_);
  Family& family = GetFamily(name, help, Type::kHistogram);
  if (family.histograms.empty()) family.bounds = bounds;
  DS_CHECK(family.bounds == bounds)
      << "histogram '" << name << "' registered with two bucket layouts";
  auto& slot = family.histograms[key];
  if (!slot) slot = std::make_unique<Histogram>(std::move(bounds));
  return slot.get();
}

std::string MetricsRegistry::ExpositionText() const {
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, family] : families_) {
    static constexpr const char* kTypeNames[] = {"counter", "gauge", "histogram"};
    absl::StrAppend(&out, "# HELP ", name, " ", EscapeHelp(family.help), "\n");
    absl::StrAppend(&out, "# TYPE ", name, " ", kTypeNames[static_cast<int>(family.type)], "\n");
    for (const auto& [key, counter] : family.counters) {
      absl::StrAppend(&out, WithLabels(name, "", key), " ", FormatMetricValue(counter->Value()),
                      "\n");
    }
    for (const auto& [key, gauge] : family.gauges) {
      absl::StrAppend(&out, WithLabels(name, "", key), " ", FormatMetricValue(gauge->Value()),
                      "\n");
    }
    for (const auto& [key, histogram] : family.histograms) {
      const std::vector<uint64_t> counts = histogram->BucketCounts();
      uint64_t cumulative = 0;
      for (size_t i = 0; i < counts.size(); ++i) {
        cumulative += counts[i];
        const std::string le =
            i < family.bounds.size() ? FormatMetricValue(family.bounds[i]) : std::string("+Inf");
        absl::StrAppend(&out, WithLabels(name, "_bucket", key, absl::StrCat("le=\"", le, "\"")),
                        " ", cumulative, "\n");
      }
      absl::StrAppend(&out, WithLabels(name, "_sum", key), " ", FormatMetricValue(histogram->Sum()),
                      "\n");
      absl::StrAppend(&out, WithLabels(name, "_count", key), " ", histogram->Count(), "\n");
    }
  }
  return out;
}

}  // namespace deepsearch
