// The actor's weight follower: SubscribeWeights on the cache service; every new version, full
// or as a delta against the one held, reassembled, verified and handed to install_weights
// (the engine's hot swap). Part of Actor (actor/actor.h); its own file for its own concern.
#include <unistd.h>

#include <algorithm>
#include <chrono>

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

void Actor::WeightLoop() {
  Retry retry(*this, "the weight subscription", 3);
  rpc::WeightChunkAssembler assembler(static_cast<uint64_t>(options_.max_weight_bytes));
  std::optional<WeightSet> held;  // the base for deltas
  bool by_file = options_.weights_by_file;
  bool file_worked = false;  // a version taken by file reference installed here
  while (true) {
    v1::SubscribeWeightsRequest request;
    request.set_subscriber_id(options_.actor_id);
    request.set_have_version(held ? held->version : 0);
    // Deltas apply to whatever this actor holds when they arrive: the cache sends the first
    // version in full (nothing held) and the later ones of the same stream as deltas.
    request.set_accept_delta(true);
    request.set_accept_file(by_file);
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
      EncodedWeights encoded = assembler.Take();
      const int64_t version = encoded.version;
      const WeightEncoding encoding = encoded.encoding;
      // Received bytes; for a file reference, the mapped set's.
      const uint64_t bytes =
          encoded.encoding == WeightEncoding::kFile ? encoded.total_bytes : encoded.data.size();
      const auto begin = std::chrono::steady_clock::now();
      absl::StatusOr<WeightSet> set = DecodeWeights(std::move(encoded), held ? &*held : nullptr);
      if (!set.ok() && encoding == WeightEncoding::kFile) {
        // Never worked: the cache's files are not visible here, so streams from now on. Once
        // it has, a failure is a version pruned or reused meanwhile: subscribe again.
        if (!file_worked) {
          log::Warning(
              "actor {}: cannot use the cache service's weight file ({}); taking "
              "streamed copies from now on",
              options_.actor_id, set.status().ToString());
          by_file = false;
        } else {
          log::Warning("actor {}: weight version {} by file: {}; asking again", options_.actor_id,
                       version, set.status().ToString());
        }
        break;
      }
      if (!set.ok()) {
        log::Error("actor {}: weight version {} does not decode: {}", options_.actor_id, version,
                   set.status().ToString());
        if (absl::IsFailedPrecondition(set.status())) held.reset();  // ask for a full copy
        break;
      }
      if (held && version <= held->version) continue;
      if (absl::Status s = deps_.install_weights(*set); !s.ok()) {
        log::Error("actor {}: installing weight version {} failed: {}", options_.actor_id, version,
                   s.ToString());
        continue;
      }
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
      log::Info("actor {}: weights v{} installed ({} {:.1f} MB, {:.2f} s)", options_.actor_id,
                version,
                encoding == WeightEncoding::kDelta  ? "delta"
                : encoding == WeightEncoding::kFile ? "file, mapped"
                                                    : "full",
                static_cast<double>(bytes) / 1e6, seconds);
      held = *std::move(set);
      progressed = true;
      file_worked = file_worked || encoding == WeightEncoding::kFile;
      absl::MutexLock lock(&mu_);
      installed_version_ = std::max(installed_version_, version);
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
