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
  static absl::StatusOr<std::unique_ptr<CacheWeightPublisher>> Connect(
      const std::string& address, const RpcConfig& rpc, absl::Duration timeout,
      size_t chunk_bytes = size_t{1} << 20);

  // Full copy of the set (the cache service computes deltas for its subscribers). Errors are
  // the cache service's status, with the address; AlreadyExists for a version it has.
  absl::Status Publish(const WeightSet& weights) override;

 private:
  CacheWeightPublisher(rpc::RpcClient client, absl::Duration timeout, size_t chunk_bytes)
      : client_(std::move(client)), timeout_(timeout), chunk_bytes_(chunk_bytes) {}

  rpc::RpcClient client_;
  absl::Duration timeout_;
  size_t chunk_bytes_;
};

}  // namespace deepsearch
