// The cache service's settings (the `cache` section of the config file). Torch- and gRPC-free,
// so the configuration builds everywhere; cache_service/cache_service.h serves them.
#pragma once

#include <cstdint>
#include <string>

#include "absl/time/time.h"

#include "common/core/config.h"

namespace deepsearch {

struct CacheOptions {
  std::string listen_address = "127.0.0.1:50052";
  // The SQLite solution store (solutions.db) and the kept weight versions (weights/).
  std::string store_dir = "deepsearch-cache";
  int32_t weight_versions_kept = 3;
  // Where a learner on this host hands weight files over by reference; empty:
  // <store_dir>/weights/incoming.
  std::string weight_import_dir;
  int64_t max_weight_bytes = 64ll << 30;  // largest encoded version accepted from the learner
  int32_t chunk_bytes = 1 << 20;          // data bytes per WeightChunk sent to subscribers
  int32_t delta_zstd_level = 3;
  int32_t max_lookup_problems = 10000;                 // problem ids per LookupSolutions call
  int32_t max_solutions_per_put = 10000;               // solutions per PutSolutions call
  int32_t max_response_bytes = 1 << 20;                // of one solution's response text
  absl::Duration status_interval = absl::Seconds(30);  // the periodic status line; 0: off

  void Bind(ConfigBinder& b);
};

}  // namespace deepsearch
