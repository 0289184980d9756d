// The gauges each service's metrics endpoint mirrors from its own counters (learner, cache
// service, actor), refreshed on every scrape of /metrics (common/rpc/metrics_http.h). The
// engine's and the search's own counters are in the same default registry already.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/core/metrics.h"

namespace deepsearch::cli {

// (name, help, value) of one gauge.
struct GaugeValue {
  std::string name;
  std::string help;
  double value = 0.0;
};

inline void SetGauges(const std::vector<GaugeValue>& gauges) {
  MetricsRegistry& registry = MetricsRegistry::Default();
  for (const GaugeValue& g : gauges) registry.GetGauge(g.name, g.help)->Set(g.value);
}

}  // namespace deepsearch::cli
