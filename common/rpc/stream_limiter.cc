#include "common/rpc/stream_limiter.h"

#include <utility>

#include "absl/strings/str_cat.h"

#include "common/rpc/status_conversion.h"

namespace deepsearch::rpc {

StreamLimiter::StreamLimiter(int32_t limit, std::string config_key, std::string owner,
                             std::string things)
    : limit_(limit),
      config_key_(std::move(config_key)),
      owner_(std::move(owner)),
      things_(std::move(things)) {}

StreamLimiter::Slot::Slot(Slot&& other) noexcept
    : limiter_(std::exchange(other.limiter_, nullptr)), key_(std::move(other.key_)) {}

StreamLimiter::Slot& StreamLimiter::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    if (limiter_ != nullptr) limiter_->Release(key_);
    limiter_ = std::exchange(other.limiter_, nullptr);
    key_ = std::move(other.key_);
  }
  return *this;
}

StreamLimiter::Slot::~Slot() {
  if (limiter_ != nullptr) limiter_->Release(key_);
}

absl::StatusOr<StreamLimiter::Slot> StreamLimiter::Acquire(const std::string& key) {
  absl::MutexLock lock(&mu_);
  int32_t& held = held_[key];
  if (limit_ > 0 && held >= limit_) {
    return absl::ResourceExhaustedError(absl::StrCat(owner_, " ", key, " has ", held, " ", things_,
                                                     " open; at most ", limit_, " (", config_key_,
                                                     ")"));
  }
  ++held;
  return Slot(this, key);
}

int32_t StreamLimiter::held(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = held_.find(key);
  return it == held_.end() ? 0 : it->second;
}

void StreamLimiter::Release(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = held_.find(key);
  if (it == held_.end()) return;
  if (--it->second <= 0) held_.erase(it);
}

std::unique_ptr<StreamLimiter> PerCallerStreamLimiter(const RpcConfig& rpc) {
  return std::make_unique<StreamLimiter>(rpc.max_streams_per_caller, "rpc.max_streams_per_caller",
                                         "caller", "streams");
}

grpc::Status AdmitStream(const ServerAuth& auth, StreamLimiter* streams,
                         const grpc::ServerContextBase& context, absl::string_view method,
                         StreamLimiter::Slot* slot) {
  Caller caller;
  if (grpc::Status s = auth.Check(context, method, &caller); !s.ok()) return s;
  if (streams == nullptr) return grpc::Status::OK;
  absl::StatusOr<StreamLimiter::Slot> taken = streams->Acquire(caller.key());
  if (!taken.ok()) return ToGrpcStatus(taken.status());
  *slot = std::move(*taken);
  return grpc::Status::OK;
}

}  // namespace deepsearch::rpc
