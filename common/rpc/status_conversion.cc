#include "common/rpc/status_conversion.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace deepsearch::rpc {
namespace {

// Both enums number google.rpc.Code identically, 0 (OK) .. 16 (UNAUTHENTICATED).
constexpr int kLastCode = 16;

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const int code = static_cast<int>(status.code());
  const grpc::StatusCode grpc_code = (code > 0 && code <= kLastCode)
                                         ? static_cast<grpc::StatusCode>(code)
                                         : grpc::StatusCode::UNKNOWN;
  return grpc::Status(grpc_code, std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  const int code = static_cast<int>(status.error_code());
  const absl::StatusCode absl_code = (code > 0 && code <= kLastCode)
                                         ? static_cast<absl::StatusCode>(code)
                                         : absl::StatusCode::kUnknown;
  std::string message = status.error_message();
  // gRPC's own refusal of an oversized message names the sizes, not the setting behind them.
  if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
      absl::StrContains(message, "message larger than max")) {
    absl::StrAppend(&message,
                    " (the receiver's rpc.max_receive_message_bytes or the sender's "
                    "rpc.max_send_message_bytes)");
  }
  return absl::Status(absl_code, std::move(message));
}

}  // namespace deepsearch::rpc
