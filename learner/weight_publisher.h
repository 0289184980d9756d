// Publishes the learner's weight versions to the cache service (CacheService.PublishWeights:
// a header chunk, data chunks, a trailer with the checksum), which acknowledges once the
// version is durable and visible to subscribers.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "common/core/runtime_config.h"
#include "common/rpc/channel.h"
#include "learner/learner.h"

namespace deepsearch {

class CacheWeightPublisher final : public WeightSink {
 public:
  // Connects lazily; errors: unreadable TLS or token files.
  struct Options {
    // The cache service's weight import directory, when this host shares its file system:
    // each version is written there as a weight file and published by reference.
    // Empty: streamed as a full copy.
    std::string import_dir;
    size_t chunk_bytes = size_t{1} << 20;  // streamed: data bytes per chunk
  };
  static absl::StatusOr<std::unique_ptr<CacheWeightPublisher>> Connect(const std::string& address,
                                                                       const RpcConfig& rpc,
                                                                       absl::Duration timeout,
                                                                       Options options);
  static absl::StatusOr<std::unique_ptr<CacheWeightPublisher>> Connect(const std::string& address,
                                                                       const RpcConfig& rpc,
                                                                       absl::Duration timeout) {
    return Connect(address, rpc, timeout, Options{});
  }

  // Full copy of the set (the cache service computes deltas for its subscribers), streamed or
  // by reference. Errors are the cache service's status, with the address; AlreadyExists for
  // a version it has; the file system's (naming the path) when the file cannot be written.
  absl::Status Publish(const WeightSet& weights) override;
  // CacheService.GetCacheStats' latest_weight_version.
  absl::StatusOr<int64_t> LatestVersion() override;

 private:
  CacheWeightPublisher(rpc::RpcClient client, absl::Duration timeout, Options options)
      : client_(std::move(client)), timeout_(timeout), options_(std::move(options)) {}

  rpc::RpcClient client_;
  absl::Duration timeout_;
  Options options_;
};

}  // namespace deepsearch
