#include "learner/weight_publisher.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "deepsearch/v1/cache_service.grpc.pb.h"

#include "common/core/status.h"
#include "common/rpc/status_conversion.h"
#include "common/rpc/weight_stream.h"
#include "common/weights/weight_file.h"

namespace deepsearch {

absl::StatusOr<std::unique_ptr<CacheWeightPublisher>> CacheWeightPublisher::Connect(
    const std::string& address, const RpcConfig& rpc, absl::Duration timeout, Options options) {
  if (address.empty()) return absl::InvalidArgumentError("no cache service address");
  if (options.chunk_bytes == 0) return absl::InvalidArgumentError("chunk_bytes must be > 0");
  if (!options.import_dir.empty()) {
    options.import_dir = std::filesystem::absolute(options.import_dir).lexically_normal().string();
  }
  DS_ASSIGN_OR_RETURN(rpc::RpcClient client, rpc::RpcClient::Connect(address, rpc));
  return std::unique_ptr<CacheWeightPublisher>(
      new CacheWeightPublisher(std::move(client), timeout, std::move(options)));
}

absl::Status CacheWeightPublisher::Publish(const WeightSet& weights) {
  EncodedWeights encoded;
  if (options_.import_dir.empty()) {
    encoded = EncodeFull(weights);
  } else {
    // Written once, on the cache's file system; the cache checks it and moves it into its
    // store (or deletes it when it refuses the version).
    encoded = FileReference(
        weights, (std::filesystem::path(options_.import_dir) /
                  absl::StrCat("weights-", weights.version, ".", ::getpid(), ".safetensors"))
                     .string());
    // Over a spare the cache retired there when there is one (its pages are reused).
    DS_RETURN_IF_ERROR(WriteWeightFile(weights, encoded.file_path, /*sync=*/false,
                                       SpareWeightFile(options_.import_dir)));
  }
  auto stub = v1::CacheService::NewStub(client_.channel());
  std::unique_ptr<grpc::ClientContext> context = client_.NewContext(timeout_);
  v1::PublishWeightsResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::WeightChunk>> writer =
      stub->PublishWeights(context.get(), &response);
  rpc::WriteWeightChunks(encoded, options_.chunk_bytes,
                         [&](const v1::WeightChunk& chunk) { return writer->Write(chunk); });
  writer->WritesDone();
  const grpc::Status status = writer->Finish();
  if (!status.ok()) {
    // A file the cache never took (the call failed before it read it) would stay behind.
    if (!encoded.file_path.empty()) {
      std::error_code ec;
      std::filesystem::remove(encoded.file_path, ec);
    }
    const absl::Status s = rpc::FromGrpcStatus(status);
    return absl::Status(s.code(), absl::StrCat("publishing weight version ", weights.version,
                                               " to ", client_.target(), ": ", s.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> CacheWeightPublisher::LatestVersion() {
  auto stub = v1::CacheService::NewStub(client_.channel());
  std::unique_ptr<grpc::ClientContext> context =
      client_.NewContext(std::min(timeout_, absl::Seconds(30)));
  v1::CacheStats stats;
  const grpc::Status status =
      stub->GetCacheStats(context.get(), v1::GetCacheStatsRequest(), &stats);
  if (!status.ok()) {
    const absl::Status s = rpc::FromGrpcStatus(status);
    return absl::Status(s.code(), absl::StrCat("asking ", client_.target(),
                                               " for its newest weight version: ", s.message()));
  }
  return stats.latest_weight_version();
}

}  // namespace deepsearch
