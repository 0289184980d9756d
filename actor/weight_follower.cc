// The actor's weight follower: SubscribeWeights on the cache service; every new version, full
// or as a delta against the one held, reassembled, verified and handed to install_weights
// (the engine's hot swap). Part of Actor (actor/actor.h); its own file for its own concern.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "deepsearch/v1/cache_service.grpc.pb.h"
#include "deepsearch/v1/learner_service.grpc.pb.h"
#include "wire/convert.h"

#include "actor/actor.h"
#include "actor/actor_internal.h"
#include "common/core/backoff.h"
#include "common/core/hash.h"
#include "common/core/logging.h"
#include "common/core/status.h"
#include "common/rpc/channel.h"
#include "common/rpc/status_conversion.h"
#include "common/rpc/weight_stream.h"

namespace deepsearch {

// ---------------------------------------------------------------------------------------------
// Weights.

namespace {

// What the follower holds across subscriptions.
struct Followed {
  std::optional<WeightSet> held;  // the base for deltas
  bool by_file = false;           // ask for file references
  bool file_worked = false;       // a version taken by file reference installed here
};

enum class Taken { kInstalled, kSkipped, kResubscribe };

// One assembled version: decoded (against the held one), installed, and held.
Taken TakeVersion(EncodedWeights encoded, const std::string& actor_id,
                  const std::function<absl::Status(const WeightSet&)>& install, Followed& f) {
  const int64_t version = encoded.version;
  const WeightEncoding encoding = encoded.encoding;
  // Received bytes; for a file reference, the mapped set's.
  const uint64_t bytes =
      encoding == WeightEncoding::kFile ? encoded.total_bytes : encoded.data.size();
  const auto begin = std::chrono::steady_clock::now();
  absl::StatusOr<WeightSet> set = DecodeWeights(std::move(encoded), f.held ? &*f.held : nullptr);
  if (!set.ok() && encoding == WeightEncoding::kFile) {
    // Never worked: the cache's files are not visible here, so streams from now on. Once it
    // has, a failure is a version pruned or reused meanwhile: subscribe again.
    if (!f.file_worked) {
      log::Warning(
          "actor {}: cannot use the cache service's weight file ({}); taking streamed copies "
          "from now on",
          actor_id, set.status().ToString());
      f.by_file = false;
    } else {
      log::Warning("actor {}: weight version {} by file: {}; asking again", actor_id, version,
                   set.status().ToString());
    }
    return Taken::kResubscribe;
  }
  if (!set.ok()) {
    log::Error("actor {}: weight version {} does not decode: {}", actor_id, version,
               set.status().ToString());
    if (absl::IsFailedPrecondition(set.status())) f.held.reset();  // ask for a full copy
    return Taken::kResubscribe;
  }
  if (f.held && version <= f.held->version) return Taken::kSkipped;
  if (absl::Status s = install(*set); !s.ok()) {
    log::Error("actor {}: installing weight version {} failed: {}", actor_id, version,
               s.ToString());
    return Taken::kSkipped;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  log::Info("actor {}: weights v{} installed ({} {:.1f} MB, {:.2f} s)", actor_id, version,
            encoding == WeightEncoding::kDelta  ? "delta"
            : encoding == WeightEncoding::kFile ? "file, mapped"
                                                : "full",
            static_cast<double>(bytes) / 1e6, seconds);
  f.held = *std::move(set);
  f.file_worked = f.file_worked || encoding == WeightEncoding::kFile;
  return Taken::kInstalled;
}

}  // namespace

void Actor::WeightLoop() {
  Retry retry(*this, "the weight subscription", 3);
  rpc::WeightChunkAssembler assembler(static_cast<uint64_t>(options_.max_weight_bytes));
  Followed followed;
  followed.by_file = options_.weights_by_file;
  while (true) {
    v1::SubscribeWeightsRequest request;
    request.set_subscriber_id(options_.actor_id);
    request.set_have_version(followed.held ? followed.held->version : 0);
    // Deltas apply to whatever this actor holds when they arrive: the cache sends the first
    // version in full (nothing held) and the later ones of the same stream as deltas.
    request.set_accept_delta(true);
    request.set_accept_file(followed.by_file);
    grpc::ClientContext context;
    clients_->cache->PrepareContext(context, absl::InfiniteDuration());
    RegisterCall(&context);
    std::unique_ptr<grpc::ClientReader<v1::WeightChunk>> reader =
        clients_->cache_stub->SubscribeWeights(&context, request);
    v1::WeightChunk chunk;
    bool progressed = false;
    while (reader->Read(&chunk)) {
      if (absl::Status s = assembler.Add(chunk); !s.ok()) {
        log::Error("actor {}: bad weight stream from the cache service: {}", options_.actor_id,
                   s.ToString());
        break;
      }
      if (!assembler.complete()) continue;
      const Taken taken =
          TakeVersion(assembler.Take(), options_.actor_id, deps_.install_weights, followed);
      if (taken == Taken::kResubscribe) break;
      if (taken == Taken::kSkipped) continue;
      progressed = true;
      absl::MutexLock lock(&mu_);
      installed_version_ = std::max(installed_version_, followed.held->version);
      ++stats_.weight_versions_installed;
    }
    context.TryCancel();
    const grpc::Status finish = reader->Finish();
    UnregisterCall(&context);
    assembler.Reset();
    if (!Sleep(absl::ZeroDuration(), /*until_stopped=*/true)) return;
    if (progressed) retry.Reset();
    if (!retry.After(rpc::FromGrpcStatus(finish), /*until_stopped=*/true)) return;
  }
}

}  // namespace deepsearch
