// The search actor process (ARCHITECTURE §1, §3): leases work from the learner, runs a tree
// per lease on the shared policy, streams the scored trajectories back, and keeps its weights
// current. It holds nothing that matters: killing it loses at most its leases, which expire
// and are issued again.
//
//   Actor actor(options, rpc_config, {&engine, &tokenizer, install_weights});
//   DS_RETURN_IF_ERROR(actor.Start());
//   ... until SIGTERM ...
//   actor.Shutdown(absl::Seconds(30));
//
// Its loops, each on its own thread, each retrying with jittered exponential backoff while
// its peer is down (common/core/backoff.h):
//   * leases   LeaseWork for as many leases as there are free tree slots (max_trees). For a
//              lease with use_solution_cache it first asks the cache service for verified
//              solutions (LookupSolutions, batched per lease call); a cached problem becomes
//              a rollout lease with the cached solutions in the first slots (spec §2). Each
//              lease becomes a tree on the TreeRunner (search/tree_runner.h); a lease that
//              cannot run (a prompt that does not tokenize, an unknown task) is reported as
//              failed with the reason.
//   * renew    RenewLease for every lease in progress, every renew_interval; a lease the
//              learner no longer honours has its tree cancelled and its results dropped.
//   * stream   StreamTrajectories: finished trees' trajectories (and completed and failed
//              lease ids) go out in batches of at most max_batch_bytes; each batch is kept
//              until the learner acks it, and after a broken stream every unacked batch is
//              sent again on a new one (delivery is at-least-once; the learner dedupes by
//              trajectory id).
//   * weights  SubscribeWeights on the cache service (when one is configured and
//              follow_weights): every new version, full or as a delta against the one held,
//              reassembled, verified and handed to install_weights (the engine's hot swap).
//   * solutions  verified correct trajectories sampled by this actor go to the cache
//              service's PutSolutions (bounded queue; the oldest are dropped when full).
//
// Trees: "<lease_id>.<attempt>", trajectories "<tree_id>/<index>". A lease without a seed
// gets one from the hash of its tree id, so re-issues of a lease search differently.
//
// Thread-safety: Start and Shutdown from one thread; stats from any.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "deepsearch/v1/cache_service.pb.h"
#include "deepsearch/v1/learner_service.pb.h"
#include "search/policy.h"
#include "search/prompt_format.h"
#include "search/tree_runner.h"

#include "actor/actor_options.h"
#include "actor/trajectory_outbox.h"
#include "common/core/backoff.h"
#include "common/core/config.h"
#include "common/core/runtime_config.h"
#include "common/tokenizer/tokenizer.h"
#include "common/weights/weight_set.h"

namespace grpc {
class ClientContext;
}  // namespace grpc

namespace deepsearch {

struct ActorStats {
  int64_t leases_received = 0;
  int64_t leases_completed = 0;
  int64_t leases_failed = 0;
  int64_t leases_revoked = 0;
  int64_t trees_running = 0;
  int64_t cached_problems = 0;  // leases served from cached solutions
  int64_t trajectories_sent = 0;
  int64_t trajectories_acked = 0;
  int64_t trajectories_duplicate = 0;
  int64_t trajectories_rejected = 0;
  int64_t batches_resent = 0;
  int64_t solutions_put = 0;
  int64_t solutions_dropped = 0;
  int64_t weight_versions_installed = 0;
  int64_t weight_version = 0;
  int64_t rpc_failures = 0;
  int64_t stream_reconnects = 0;
  int64_t generated_tokens = 0;
  // Time outside the model: the trees' bookkeeping on the runner threads (verification,
  // backup, selection, scoring) and the actor's per-tree work (messages, solutions).
  double tree_seconds = 0.0;
  double actor_seconds = 0.0;
};

class Actor {
 public:
  struct Dependencies {
    Policy* policy = nullptr;
    const Tokenizer* tokenizer = nullptr;
    // Installs a received weight set (for the engine: import, then SwapWeights); called on the
    // weights thread. Null: weights are not followed.
    std::function<absl::Status(const WeightSet&)> install_weights = nullptr;
  };

  Actor(ActorOptions options, RpcConfig rpc, Dependencies deps);
  ~Actor();  // Shutdown(0) if still running
  Actor(const Actor&) = delete;
  Actor& operator=(const Actor&) = delete;

  // Checks the options, connects the channels (lazily) and starts the loops.
  absl::Status Start();
  // Stops leasing, lets running trees finish for up to `drain` (then cancels the rest and
  // reports their leases as failed), flushes unacked trajectories within what is left of
  // `drain`, and stops every loop.
  void Shutdown(absl::Duration drain);

  ActorStats stats() const;
  const std::string& actor_id() const { return options_.actor_id; }

 private:
  struct Clients;
  struct LeaseState;
  using Outgoing = TrajectoryOutbox::Item;
  // The retries of one loop's calls to a peer that may be down: each failure logged (the
  // first and every tenth in a row) and followed by the next jittered backoff delay.
  class Retry {
   public:
    Retry(Actor& actor, std::string what, uint64_t loop);
    // After a failed call: logs it and waits; false when the loop must exit.
    bool After(const absl::Status& failure, bool until_stopped);
    // After progress: the next failure waits the shortest delay again.
    void Reset() { backoff_.Reset(); }

   private:
    Actor& actor_;
    const std::string what_;
    Backoff backoff_;
  };
  // How one trajectory stream ended.
  struct StreamOutcome {
    absl::Status status;     // the stream's final status
    bool acked_any = false;  // the learner acked at least one batch on it
    bool stopped = false;    // the actor is stopping
  };

  void LeaseLoop();
  void RenewLoop();
  void StreamLoop();
  // One stream: resends what the last one left unacked, then batches until it breaks.
  StreamOutcome RunStream();
  void WeightLoop();
  void SolutionLoop();
  void StatusLoop();

  // Leases -> trees.
  // The cached solutions of the leases that may use them (SEARCH and ROLLOUT), by problem id,
  // in one LookupSolutions call; none when the cache service is absent or fails.
  std::map<std::string, std::vector<CachedSolution>> LookupCached(
      const v1::LeaseWorkResponse& response);
  void StartLease(const v1::Lease& lease, std::vector<CachedSolution> cached);
  void OnTreeDone(const std::string& lease_id, TreeResult result);
  void FailLease(const std::string& lease_id, const std::string& reason);
  void LogRpcFailure(std::string_view what, const absl::Status& status, int64_t failures);
  // Queues a batch piece for the stream loop.
  void Send(Outgoing item);
  // Sleeps up to `d`; returns false (at once) when the actor is stopping (no new leases), or
  // with until_stopped, only once every loop must exit.
  bool Sleep(absl::Duration d, bool until_stopped);
  void RegisterCall(grpc::ClientContext* context);
  void UnregisterCall(grpc::ClientContext* context);
  int64_t held_weight_version() const;

  ActorOptions options_;
  const RpcConfig rpc_;
  Dependencies deps_;
  std::optional<PromptFormat> prompt_format_;
  std::unique_ptr<Clients> clients_;
  std::unique_ptr<TreeRunner> runner_;

  mutable absl::Mutex mu_;
  absl::CondVar cv_;  // any change: a tree finished, something to send, an ack, stopping
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;  // no new leases
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;   // every loop must exit
  std::map<std::string, std::unique_ptr<LeaseState>> leases_ ABSL_GUARDED_BY(mu_);
  TrajectoryOutbox outbox_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::Solution> solutions_ ABSL_GUARDED_BY(mu_);
  std::vector<grpc::ClientContext*> calls_ ABSL_GUARDED_BY(mu_);
  ActorStats stats_ ABSL_GUARDED_BY(mu_);
  int64_t installed_version_ ABSL_GUARDED_BY(mu_) = 0;

  std::vector<std::thread> threads_;
};

}  // namespace deepsearch
