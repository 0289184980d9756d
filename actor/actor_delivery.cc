// What the actor delivers: finished trees' trajectories to the learner over the acked stream
// (the bookkeeping in actor/trajectory_outbox.h), verified solutions to the cache service.
// Part of Actor (actor/actor.h); its own file for its own concern.
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

namespace {

constexpr int32_t kSolutionsPerPut = 64;

absl::Status AckTimeoutError(absl::Duration timeout) {
  return absl::DeadlineExceededError(
      absl::StrCat("the learner acknowledged no batch for ", absl::FormatDuration(timeout),
                   " (actor.ack_timeout); the stream is opened again and its batches resent"));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The trajectory stream.

void Actor::StreamLoop() {
  Retry retry(*this, "the trajectory stream", 2);
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      // Open a stream only when there is something to deliver.
      while (!stopped_ && !outbox_.Pending()) cv_.WaitWithTimeout(&mu_, absl::Seconds(1));
      if (stopped_) return;
    }
    const StreamOutcome outcome = RunStream();
    if (outcome.stopped) return;
    if (outcome.acked_any) retry.Reset();
    {
      absl::MutexLock lock(&mu_);
      ++stats_.stream_reconnects;
    }
    if (!retry.After(outcome.status, /*until_stopped=*/true)) return;
  }
}

Actor::StreamOutcome Actor::RunStream() {
  grpc::ClientContext context;
  clients_->learner->PrepareContext(context, absl::InfiniteDuration());
  RegisterCall(&context);
  std::unique_ptr<grpc::ClientReaderWriter<v1::TrajectoryBatch, v1::TrajectoryAck>> stream =
      clients_->learner_stub->StreamTrajectories(&context);
  StreamOutcome outcome;
  bool broken = false;  // guarded by mu_
  // Since when the oldest unacknowledged batch has waited (guarded by mu_; InfiniteFuture:
  // none waits).
  absl::Time ack_wait_since = absl::InfiniteFuture();
  std::thread reader([&] {
    v1::TrajectoryAck ack;
    while (stream->Read(&ack)) {
      absl::MutexLock lock(&mu_);
      const std::optional<TrajectoryOutbox::Acked> acked = outbox_.Ack(ack);
      if (!acked.has_value()) continue;
      ack_wait_since = outbox_.HasUnacked() ? absl::Now() : absl::InfiniteFuture();
      outcome.acked_any = true;
      stats_.trajectories_acked += acked->accepted;
      stats_.trajectories_duplicate += acked->duplicates;
      stats_.trajectories_rejected += acked->rejected;
      for (const v1::TrajectoryRejection& r : ack.rejections()) {
        log::Warning("actor {}: the learner refused trajectory {}: {}", options_.actor_id,
                     r.trajectory_id(), r.reason());
      }
      cv_.SignalAll();
    }
    absl::MutexLock lock(&mu_);
    broken = true;
    cv_.SignalAll();
  });
  // Batches a broken stream left unacked go first, renumbered for this stream.
  std::vector<v1::TrajectoryBatch> resend;
  {
    absl::MutexLock lock(&mu_);
    resend = outbox_.Reopen();
    stats_.batches_resent = outbox_.resent();
    if (!resend.empty()) ack_wait_since = absl::Now();
  }
  bool write_failed = false;
  for (const v1::TrajectoryBatch& batch : resend) {
    if (!stream->Write(batch)) {
      write_failed = true;
      break;
    }
  }
  bool ack_overdue = false;
  while (!write_failed) {
    std::optional<v1::TrajectoryBatch> batch;
    {
      absl::MutexLock lock(&mu_);
      const auto overdue = [&] { return absl::Now() - ack_wait_since >= options_.ack_timeout; };
      while (!stopped_ && !broken && !outbox_.HasQueued() && !overdue())
        cv_.WaitWithTimeout(&mu_, absl::Seconds(1));
      if (stopped_ || broken || (ack_overdue = overdue())) break;
      batch = outbox_.NextBatch();
      stats_.trajectories_sent += batch->trajectories_size();
      if (ack_wait_since == absl::InfiniteFuture()) ack_wait_since = absl::Now();
    }
    if (!stream->Write(*batch)) write_failed = true;
  }
  {
    absl::MutexLock lock(&mu_);
    outcome.stopped = stopped_;
  }
  if (!outcome.stopped) stream->WritesDone();
  context.TryCancel();
  reader.join();
  outcome.status = rpc::FromGrpcStatus(stream->Finish());
  if (ack_overdue) outcome.status = AckTimeoutError(options_.ack_timeout);
  UnregisterCall(&context);
  return outcome;
}

// ---------------------------------------------------------------------------------------------
// Solutions.

void Actor::SolutionLoop() {
  Retry retry(*this, "PutSolutions", 4);
  while (true) {
    v1::PutSolutionsRequest request;
    {
      absl::MutexLock lock(&mu_);
      while (!stopped_ && solutions_.empty()) cv_.WaitWithTimeout(&mu_, absl::Seconds(1));
      if (stopped_) {
        if (!solutions_.empty()) {
          log::Warning("actor {}: {} verified solutions not delivered to the cache",
                       options_.actor_id, solutions_.size());
        }
        return;
      }
      for (size_t i = 0; i < solutions_.size() && i < kSolutionsPerPut; ++i)
        *request.add_solutions() = solutions_[i];
    }
    v1::PutSolutionsResponse response;
    grpc::ClientContext context;
    clients_->cache->PrepareContext(context, options_.rpc_timeout);
    RegisterCall(&context);
    const grpc::Status s = clients_->cache_stub->PutSolutions(&context, request, &response);
    UnregisterCall(&context);
    if (!s.ok()) {
      if (!retry.After(rpc::FromGrpcStatus(s), /*until_stopped=*/true)) return;
      continue;
    }
    retry.Reset();
    absl::MutexLock lock(&mu_);
    // The sent ones are still at the front (only OnTreeDone appends; drops take the oldest,
    // which may have shifted them, so match by trajectory id).
    for (const v1::Solution& sent : request.solutions()) {
      auto it = std::find_if(solutions_.begin(), solutions_.end(), [&](const v1::Solution& q) {
        return q.trajectory_id() == sent.trajectory_id();
      });
      if (it != solutions_.end()) solutions_.erase(it);
    }
    stats_.solutions_put += request.solutions_size();
    for (const v1::PutResult& r : response.results()) {
      if (r.status() == v1::PutResult::STATUS_REJECTED) {
        log::Warning("actor {}: the cache refused a solution of problem {}: {}", options_.actor_id,
                     r.problem_id(), r.reason());
      }
    }
    cv_.SignalAll();
  }
}

}  // namespace deepsearch
