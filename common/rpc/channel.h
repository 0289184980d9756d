// Client side of the RPC layer: channels with the deployment's TLS, token and size limits.
//
//   DS_ASSIGN_OR_RETURN(RpcClient client, RpcClient::Connect("learner:50051", config.rpc));
//   auto stub = deepsearch::v1::LearnerService::NewStub(client.channel());
//   auto context = client.NewContext(absl::Seconds(10));
//   grpc::Status s = stub->LeaseWork(context.get(), request, &response);
//
// Thread-safe: one RpcClient (one channel) serves every thread of a process.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "common/core/runtime_config.h"
#include "common/rpc/auth.h"

namespace deepsearch::rpc {

class RpcClient {
 public:
  // Creates the channel (connecting lazily). Errors: unreadable TLS files or token file.
  static absl::StatusOr<RpcClient> Connect(const std::string& target, const RpcConfig& config);

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  const std::string& target() const { return target_; }

  // A context carrying the bearer token (if any: the first line of rpc.auth.token_file, re-read
  // every rpc.auth.reload_interval, or rpc.auth.token_env's value) and a deadline `timeout` from
  // now (InfiniteDuration: no deadline, for long-lived streams).
  std::unique_ptr<grpc::ClientContext> NewContext(absl::Duration timeout) const;
  void PrepareContext(grpc::ClientContext& context, absl::Duration timeout) const;

  // Blocks until the channel is connected or `timeout` passes (UNAVAILABLE then).
  absl::Status WaitForConnected(absl::Duration timeout) const;

 private:
  RpcClient(std::string target, std::shared_ptr<grpc::Channel> channel,
            std::shared_ptr<TokenFile> token_file, std::string token)
      : target_(std::move(target)),
        channel_(std::move(channel)),
        token_file_(std::move(token_file)),
        token_(std::move(token)) {}

  std::string target_;
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<TokenFile> token_file_;  // null: the fixed token_ (possibly empty)
  std::string token_;
};

}  // namespace deepsearch::rpc
