// Caps on what one caller can hold open: a count per key (a caller's Caller::key(), a job's
// id) against a limit, refused with RESOURCE_EXHAUSTED naming the key, the limit and the
// config key that sets it.
//
//   std::unique_ptr<StreamLimiter> streams = PerCallerStreamLimiter(config.rpc);
//   DS_ASSIGN_OR_RETURN(StreamLimiter::Slot slot, streams->Acquire(caller.key()));
//   ... serve the stream; the slot is given back when it is destroyed
//
// Thread-safe. A limiter must outlive its slots.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

#include "common/core/runtime_config.h"
#include "common/rpc/auth.h"

namespace deepsearch::rpc {

class StreamLimiter {
 public:
  // `limit` <= 0: no limit. `config_key`, `owner` and `things` only word the refusal
  // ("caller actor@10.0.0.7 has 64 streams open; at most 64 (rpc.max_streams_per_caller)").
  StreamLimiter(int32_t limit, std::string config_key, std::string owner, std::string things);
  StreamLimiter(const StreamLimiter&) = delete;
  StreamLimiter& operator=(const StreamLimiter&) = delete;

  // One held unit of a key's count; movable, released on destruction.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    ~Slot();

   private:
    friend class StreamLimiter;
    Slot(StreamLimiter* limiter, std::string key) : limiter_(limiter), key_(std::move(key)) {}
    StreamLimiter* limiter_ = nullptr;
    std::string key_;
  };

  absl::StatusOr<Slot> Acquire(const std::string& key);
  // Units of `key` held now.
  int32_t held(const std::string& key) const;

 private:
  void Release(const std::string& key);

  const int32_t limit_;
  const std::string config_key_;
  const std::string owner_;
  const std::string things_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, int32_t> held_ ABSL_GUARDED_BY(mu_);
};

// The limit of rpc.max_streams_per_caller, shared by every service of a process.
std::unique_ptr<StreamLimiter> PerCallerStreamLimiter(const RpcConfig& rpc);

// Admits one call of a streaming `method`: checks its token (ServerAuth::Check) and, when
// `streams` is given, takes one of the caller's slots into `slot` (RESOURCE_EXHAUSTED when the
// caller holds its limit).
grpc::Status AdmitStream(const ServerAuth& auth, StreamLimiter* streams,
                         const grpc::ServerContextBase& context, absl::string_view method,
                         StreamLimiter::Slot* slot);

}  // namespace deepsearch::rpc
