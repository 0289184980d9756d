// absl::Status <-> grpc::Status. The two code sets are the same google.rpc.Code values;
// messages are carried over unchanged, but for gRPC's own refusal of an oversized message,
// which FromGrpcStatus completes with the config keys that set the limits. Adapters return
// ToGrpcStatus(core_call()).
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace deepsearch::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace deepsearch::rpc
