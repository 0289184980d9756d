#include "cache_service/cache_options.h"

namespace deepsearch {

void CacheOptions::Bind(ConfigBinder& b) {
  b.Field("listen_address", listen_address, "host:port the cache service serves on").NonEmpty();
  b.Field("store_dir", store_dir,
          "Directory of the solution store (solutions.db, SQLite) and the kept weight versions "
          "(weights/)")
      .NonEmpty();
  b.Field("weight_versions_kept", weight_versions_kept,
          "Newest weight versions kept on disk (older ones are deleted; deltas need the base)")
      .Range(1, 1000);
  b.Field("weight_import_dir", weight_import_dir,
          "Directory where a learner on this host puts weight files to publish by reference "
          "(learner.cache_import_dir); on the store's file system. Empty: "
          "<store_dir>/weights/incoming");
  b.Field("max_weight_bytes", max_weight_bytes, "Largest encoded weight version accepted")
      .Range(1, 1ll << 40);
  b.Field("chunk_bytes", chunk_bytes, "Data bytes per WeightChunk sent to subscribers")
      .Range(1024, 64 << 20);
  b.Field("delta_zstd_level", delta_zstd_level, "zstd level of weight deltas").Range(1, 19);
  b.Field("max_lookup_problems", max_lookup_problems, "Problem ids per LookupSolutions call")
      .Range(1, 1 << 24);
  b.Field("max_solutions_per_put", max_solutions_per_put, "Solutions per PutSolutions call")
      .Range(1, 1 << 24);
  b.Field("max_response_bytes", max_response_bytes, "Longest response text of one solution")
      .Range(1, 1 << 30);
  b.Field("status_interval", status_interval, "Period of the status line in the log (0: off)");
}

}  // namespace deepsearch
