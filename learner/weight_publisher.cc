#include "learner/weight_publisher.h"

#include "absl/strings/str_cat.h"
#include "deepsearch/v1/cache_service.grpc.pb.h"

#include "common/core/status.h"
#include "common/rpc/status_conversion.h"
#include "common/rpc/weight_stream.h"

namespace deepsearch {

absl::StatusOr<std::unique_ptr<CacheWeightPublisher>> CacheWeightPublisher::Connect(
    const std::string& address, const RpcConfig& rpc, absl::Duration timeout, size_t chunk_bytes) {
  if (address.empty()) return absl::InvalidArgumentError("no cache service address");
  if (chunk_bytes == 0) return absl::InvalidArgumentError("chunk_bytes must be > 0");
  DS_ASSIGN_OR_RETURN(rpc::RpcClient client, rpc::RpcClient::Connect(address, rpc));
  return std::unique_ptr<CacheWeightPublisher>(
      new CacheWeightPublisher(std::move(client), timeout, chunk_bytes));
}

absl::Status CacheWeightPublisher::Publish(const WeightSet& weights) {
  const EncodedWeights encoded = EncodeFull(weights);
  auto stub = v1::CacheService::NewStub(client_.channel());
  std::unique_ptr<grpc::ClientContext> context = client_.NewContext(timeout_);
  v1::PublishWeightsResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::WeightChunk>> writer =
      stub->PublishWeights(context.get(), &response);
  rpc::WriteWeightChunks(encoded, chunk_bytes_,
                         [&](const v1::WeightChunk& chunk) { return writer->Write(chunk); });
  writer->WritesDone();
  const grpc::Status status = writer->Finish();
  if (!status.ok()) {
    const absl::Status s = rpc::FromGrpcStatus(status);
    return absl::Status(s.code(), absl::StrCat("publishing weight version ", weights.version,
                                               " to ", client_.target(), ": ", s.message()));
  }
  return absl::OkStatus();
}

}  // namespace deepsearch
