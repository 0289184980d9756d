// The gRPC adapter of the cache service (deepsearch.v1.CacheService): it checks the bearer
// token and the caller's role (common/rpc/auth.h), translates messages and calls the
// SolutionStore and the WeightStore; no algorithm lives here. Malformed input gets
// INVALID_ARGUMENT (or the store's code) with a message naming what was wrong; a request
// past a limit gets RESOURCE_EXHAUSTED naming the limit's config key; nothing a client sends
// can crash the server.
//
//   PutSolutions     re-verified, deduped, acknowledged once durable (solution_store.h)
//   LookupSolutions  by problem ids, batched
//   GetCacheStats    the stores' counters
//   PublishWeights   one version per call: header, data chunks in order, trailer; assembled
//                    and checked (common/rpc/weight_stream.h), then stored (weight_store.h);
//                    visible to subscribers only once complete, verified and durable
//   SubscribeWeights every version newer than the subscriber's, each as a delta against the
//                    version it holds (when it accepts deltas and that one is kept) or in
//                    full. A subscriber always gets the newest version: one that is slower
//                    than the publisher skips the versions published while it was receiving.
//                    Each subscriber has one version in flight (the gRPC stream's flow
//                    control is the bound), the encoding is shared, and neither the publisher
//                    nor other subscribers ever wait for a slow one.
//   GetWeights       one kept version (the newest for 0), full or as a delta
//
// Threading: gRPC's synchronous server runs each call on its own thread; a subscription
// holds one for its lifetime. Shutdown() ends every subscription within ~200 ms.
#pragma once

#include <atomic>
#include <cstdint>

#include "deepsearch/v1/cache_service.grpc.pb.h"

#include "cache_service/cache_options.h"
#include "cache_service/solution_store.h"
#include "cache_service/weight_store.h"
#include "common/rpc/server.h"
#include "common/rpc/stream_limiter.h"

namespace deepsearch {

struct CacheServiceCounters {
  int64_t weight_bytes_sent = 0;
  int64_t weight_versions_sent = 0;
  int32_t subscribers = 0;
};

class CacheServiceImpl final : public v1::CacheService::Service {
 public:
  // The stores (and `streams`, the process's per-caller stream limit; null: none) are not
  // owned and must outlive the service.
  CacheServiceImpl(SolutionStore* solutions, WeightStore* weights, const CacheOptions& options,
                   rpc::ServerAuth auth, rpc::StreamLimiter* streams = nullptr)
      : solutions_(solutions),
        weights_(weights),
        options_(options),
        auth_(std::move(auth)),
        streams_(streams) {}

  grpc::Status PutSolutions(grpc::ServerContext* context, const v1::PutSolutionsRequest* request,
                            v1::PutSolutionsResponse* response) override;
  grpc::Status LookupSolutions(grpc::ServerContext* context,
                               const v1::LookupSolutionsRequest* request,
                               v1::LookupSolutionsResponse* response) override;
  grpc::Status GetCacheStats(grpc::ServerContext* context, const v1::GetCacheStatsRequest* request,
                             v1::CacheStats* response) override;
  grpc::Status PublishWeights(grpc::ServerContext* context,
                              grpc::ServerReader<v1::WeightChunk>* reader,
                              v1::PublishWeightsResponse* response) override;
  grpc::Status SubscribeWeights(grpc::ServerContext* context,
                                const v1::SubscribeWeightsRequest* request,
                                grpc::ServerWriter<v1::WeightChunk>* writer) override;
  grpc::Status GetWeights(grpc::ServerContext* context, const v1::GetWeightsRequest* request,
                          grpc::ServerWriter<v1::WeightChunk>* writer) override;

  CacheServiceCounters counters() const;
  // The stats message GetCacheStats answers with.
  v1::CacheStats Stats() const;

 private:
  // Sends one encoded version; false when the stream broke.
  bool Send(const EncodedWeights& encoded, grpc::ServerWriter<v1::WeightChunk>* writer);

  SolutionStore* solutions_;
  WeightStore* weights_;
  const CacheOptions options_;
  const rpc::ServerAuth auth_;
  rpc::StreamLimiter* const streams_;
  std::atomic<int64_t> weight_bytes_sent_{0};
  std::atomic<int64_t> weight_versions_sent_{0};
  std::atomic<int32_t> subscribers_{0};
};

}  // namespace deepsearch
