#include "common/rpc/channel.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/str_cat.h"

#include "common/core/status.h"
#include "common/rpc/server.h"

namespace deepsearch::rpc {
namespace {

int ClampToInt(int64_t v) {
  return static_cast<int>(std::min<int64_t>(v, std::numeric_limits<int>::max()));
}

std::chrono::system_clock::time_point DeadlineAfter(absl::Duration timeout) {
  return std::chrono::system_clock::now() +
         std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout));
}

}  // namespace

absl::StatusOr<RpcClient> RpcClient::Connect(const std::string& target, const RpcConfig& config) {
  if (target.empty()) return absl::InvalidArgumentError("empty RPC target address");
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  grpc::ChannelArguments args;
  if (config.tls.enabled) {
    grpc::SslCredentialsOptions ssl;
    if (!config.tls.ca_file.empty()) {
      DS_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPemFile("rpc.tls.ca_file", config.tls.ca_file));
    }
    if (!config.tls.cert_file.empty()) {
      DS_ASSIGN_OR_RETURN(ssl.pem_cert_chain,
                          ReadPemFile("rpc.tls.cert_file", config.tls.cert_file));
      DS_ASSIGN_OR_RETURN(ssl.pem_private_key,
                          ReadPemFile("rpc.tls.key_file", config.tls.key_file));
    }
    credentials = grpc::SslCredentials(ssl);
    if (!config.tls.server_name_override.empty()) {
      args.SetSslTargetNameOverride(config.tls.server_name_override);
    }
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  std::shared_ptr<TokenFile> token_file;
  std::string token;
  if (!config.auth.token_file.empty()) {
    DS_ASSIGN_OR_RETURN(token_file, TokenFile::Open("rpc.auth.token_file", config.auth.token_file,
                                                    config.auth.reload_interval));
  } else {
    token = ReadAuthTokenFromEnv(config.auth);
  }

  args.SetMaxReceiveMessageSize(ClampToInt(config.max_receive_message_bytes));
  args.SetMaxSendMessageSize(ClampToInt(config.max_send_message_bytes));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
              ClampToInt(absl::ToInt64Milliseconds(config.keepalive_time)));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
              ClampToInt(absl::ToInt64Milliseconds(config.keepalive_timeout)));
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  const int max_backoff_ms =
      std::max(100, ClampToInt(absl::ToInt64Milliseconds(config.reconnect_backoff_max)));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_backoff_ms);
  auto channel = grpc::CreateCustomChannel(target, credentials, args);
  return RpcClient(target, std::move(channel), std::move(token_file), std::move(token));
}

void RpcClient::PrepareContext(grpc::ClientContext& context, absl::Duration timeout) const {
  if (token_file_ != nullptr) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", token_file_->First()));
  } else if (!token_.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", token_));
  }
  if (timeout != absl::InfiniteDuration()) context.set_deadline(DeadlineAfter(timeout));
}

std::unique_ptr<grpc::ClientContext> RpcClient::NewContext(absl::Duration timeout) const {
  auto context = std::make_unique<grpc::ClientContext>();
  PrepareContext(*context, timeout);
  return context;
}

absl::Status RpcClient::WaitForConnected(absl::Duration timeout) const {
  if (channel_->WaitForConnected(DeadlineAfter(timeout))) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("cannot connect to ", target_, " within ", absl::FormatDuration(timeout)));
}

}  // namespace deepsearch::rpc
