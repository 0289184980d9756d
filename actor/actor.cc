#include "actor/actor.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "deepsearch/v1/cache_service.grpc.pb.h"
#include "deepsearch/v1/learner_service.grpc.pb.h"
#include "wire/convert.h"

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

std::string DefaultActorId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] != '\0' ? host : "actor", "-", getpid());
}

ActorOptions WithActorId(ActorOptions options) {
  if (options.actor_id.empty()) options.actor_id = DefaultActorId();
  return options;
}

}  // namespace

Actor::Actor(ActorOptions options, RpcConfig rpc, Dependencies deps)
    : options_(WithActorId(std::move(options))),
      rpc_(std::move(rpc)),
      deps_(std::move(deps)),
      clients_(new Clients),
      outbox_(options_.actor_id, options_.max_batch_bytes) {}

Actor::~Actor() { Shutdown(absl::ZeroDuration()); }

absl::Status Actor::Start() {
  if (deps_.policy == nullptr || deps_.tokenizer == nullptr) {
    return absl::InvalidArgumentError("actor: a policy and a tokenizer are required");
  }
  if (options_.learner_address.empty())
    return absl::InvalidArgumentError("actor: learner_address is empty");
  if (options_.max_trees < 1) return absl::InvalidArgumentError("actor: max_trees must be >= 1");
  absl::StatusOr<PromptFormat> format = PromptFormat::Parse(options_.prompt_template);
  if (!format.ok()) return Annotate(format.status(), "actor.prompt_template");
  prompt_format_ = *std::move(format);

  absl::StatusOr<rpc::RpcClient> learner = rpc::RpcClient::Connect(options_.learner_address, rpc_);
  if (!learner.ok()) return Annotate(learner.status(), "actor: learner");
  clients_->learner.emplace(*std::move(learner));
  clients_->learner_stub = v1::LearnerService::NewStub(clients_->learner->channel());
  if (!options_.cache_address.empty()) {
    absl::StatusOr<rpc::RpcClient> cache = rpc::RpcClient::Connect(options_.cache_address, rpc_);
    if (!cache.ok()) return Annotate(cache.status(), "actor: cache service");
    clients_->cache.emplace(*std::move(cache));
    clients_->cache_stub = v1::CacheService::NewStub(clients_->cache->channel());
  }
  runner_ = std::make_unique<TreeRunner>(*deps_.policy, *deps_.tokenizer,
                                         TreeRunnerOptions{.threads = options_.search_threads});
  {
    absl::MutexLock lock(&mu_);
    if (started_) return absl::FailedPreconditionError("actor: already started");
    started_ = true;
    installed_version_ = deps_.policy->weight_version();
  }
  threads_.emplace_back([this] { LeaseLoop(); });
  threads_.emplace_back([this] { RenewLoop(); });
  threads_.emplace_back([this] { StreamLoop(); });
  if (clients_->cache_stub != nullptr && options_.follow_weights &&
      deps_.install_weights != nullptr) {
    threads_.emplace_back([this] { WeightLoop(); });
  }
  if (clients_->cache_stub != nullptr && options_.put_solutions)
    threads_.emplace_back([this] { SolutionLoop(); });
  if (options_.status_interval > absl::ZeroDuration())
    threads_.emplace_back([this] { StatusLoop(); });
  log::Info("actor {}: leasing from {}{}, up to {} trees, weights v{}", options_.actor_id,
            options_.learner_address,
            options_.cache_address.empty() ? std::string()
                                           : absl::StrCat(", cache at ", options_.cache_address),
            options_.max_trees, held_weight_version());
  return absl::OkStatus();
}

void Actor::Shutdown(absl::Duration drain) {
  const absl::Time deadline = absl::Now() + drain;
  std::vector<std::string> to_cancel;
  {
    absl::MutexLock lock(&mu_);
    if (!started_ || stopped_) return;
    stopping_ = true;
    cv_.SignalAll();
    // Let running trees finish.
    while (!leases_.empty() && cv_.WaitWithDeadline(&mu_, deadline) == false) {
    }
    for (const auto& [tree_id, state] : leases_) to_cancel.push_back(tree_id);
  }
  if (!to_cancel.empty())
    log::Info("actor {}: cancelling {} trees to shut down", options_.actor_id, to_cancel.size());
  for (const std::string& tree_id : to_cancel) runner_->Cancel(tree_id);
  runner_->WaitIdle();
  {
    absl::MutexLock lock(&mu_);
    // Deliver what is finished, including the failures of the cancelled trees (with a second
    // at least, so that the learner hears of them rather than waiting for their leases to
    // expire).
    const absl::Time flush_deadline = std::max(deadline, absl::Now() + absl::Seconds(1));
    while ((outbox_.Pending() || !solutions_.empty()) &&
           cv_.WaitWithDeadline(&mu_, flush_deadline) == false) {
    }
    if (outbox_.Pending()) {
      log::Warning(
          "actor {}: shutting down with {} trajectory batches undelivered (their leases will "
          "expire)",
          options_.actor_id, outbox_.PendingCount());
    }
    stopped_ = true;
    for (grpc::ClientContext* call : calls_) call->TryCancel();
    cv_.SignalAll();
  }
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  runner_.reset();
  log::Info("actor {}: stopped", options_.actor_id);
}

ActorStats Actor::stats() const {
  absl::MutexLock lock(&mu_);
  ActorStats s = stats_;
  s.trees_running = static_cast<int64_t>(leases_.size());
  s.weight_version =
      std::max(installed_version_, deps_.policy != nullptr ? deps_.policy->weight_version() : 0);
  return s;
}

int64_t Actor::held_weight_version() const {
  absl::MutexLock lock(&mu_);
  return std::max(installed_version_, deps_.policy->weight_version());
}

bool Actor::Sleep(absl::Duration d, bool until_stopped) {
  const absl::Time deadline = absl::Now() + d;
  absl::MutexLock lock(&mu_);
  auto done = [&] { return until_stopped ? stopped_ : stopping_; };
  while (!done() && !cv_.WaitWithDeadline(&mu_, deadline)) {
  }
  return !done();
}

void Actor::RegisterCall(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  if (stopped_) context->TryCancel();
  calls_.push_back(context);
}

void Actor::UnregisterCall(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  calls_.erase(std::remove(calls_.begin(), calls_.end(), context), calls_.end());
}

Actor::Retry::Retry(Actor& actor, std::string what, uint64_t loop)
    : actor_(actor),
      what_(std::move(what)),
      backoff_(actor.options_.backoff_initial, actor.options_.backoff_max,
               Hash64(actor.options_.actor_id, loop)) {}

bool Actor::Retry::After(const absl::Status& failure, bool until_stopped) {
  const absl::Duration delay = backoff_.Next();
  actor_.LogRpcFailure(what_, failure, backoff_.failures());
  return actor_.Sleep(delay, until_stopped);
}

void Actor::LogRpcFailure(std::string_view what, const absl::Status& status, int64_t failures) {
  {
    absl::MutexLock lock(&mu_);
    ++stats_.rpc_failures;
  }
  // The first failure of a run and then every tenth, so a long outage does not flood the log.
  if (failures == 1 || failures % 10 == 0) {
    log::Warning("actor {}: {} failed ({} in a row): {}; retrying", options_.actor_id,
                 std::string(what), failures, status.ToString());
  }
}

void Actor::Send(Outgoing item) {
  absl::MutexLock lock(&mu_);
  outbox_.Add(std::move(item));
  cv_.SignalAll();
}

void Actor::FailLease(const std::string& lease_id, const std::string& reason) {
  log::Warning("actor {}: lease {} failed: {}", options_.actor_id, lease_id, reason);
  Outgoing item;
  v1::LeaseFailure& f = item.failures.emplace_back();
  f.set_lease_id(lease_id);
  f.set_reason(reason);
  {
    absl::MutexLock lock(&mu_);
    ++stats_.leases_failed;
  }
  Send(std::move(item));
}

// ---------------------------------------------------------------------------------------------
// Leases.

void Actor::LeaseLoop() {
  Retry retry(*this, "LeaseWork", 1);
  while (true) {
    int32_t free = 0;
    {
      absl::MutexLock lock(&mu_);
      while (!stopping_ && static_cast<int32_t>(leases_.size()) >= options_.max_trees) {
        cv_.WaitWithTimeout(&mu_, absl::Seconds(1));
      }
      if (stopping_) return;
      free = options_.max_trees - static_cast<int32_t>(leases_.size());
    }
    v1::LeaseWorkRequest request;
    request.set_actor_id(options_.actor_id);
    request.set_max_leases(free);
    request.set_weight_version(held_weight_version());
    v1::LeaseWorkResponse response;
    grpc::ClientContext context;
    clients_->learner->PrepareContext(context, options_.rpc_timeout);
    RegisterCall(&context);
    const grpc::Status s = clients_->learner_stub->LeaseWork(&context, request, &response);
    UnregisterCall(&context);
    if (!s.ok()) {
      if (!retry.After(rpc::FromGrpcStatus(s), /*until_stopped=*/false)) return;
      continue;
    }
    retry.Reset();
    if (response.leases_size() == 0) {
      absl::Duration wait = options_.idle_poll;
      if (response.has_retry_after()) {
        wait = absl::Seconds(response.retry_after().seconds()) +
               absl::Nanoseconds(response.retry_after().nanos());
        if (wait <= absl::ZeroDuration()) wait = options_.idle_poll;
      }
      if (!Sleep(wait, false)) return;
      continue;
    }
    std::map<std::string, std::vector<CachedSolution>> cached = LookupCached(response);
    for (const v1::Lease& lease : response.leases()) {
      auto it = cached.find(lease.problem().id());
      StartLease(lease, it == cached.end() ? std::vector<CachedSolution>{} : std::move(it->second));
    }
  }
}

std::map<std::string, std::vector<CachedSolution>> Actor::LookupCached(
    const v1::LeaseWorkResponse& response) {
  std::map<std::string, std::vector<CachedSolution>> cached;
  if (clients_->cache_stub == nullptr) return cached;
  v1::LookupSolutionsRequest lookup;
  for (const v1::Lease& lease : response.leases()) {
    if (lease.use_solution_cache() &&
        (lease.mode() == v1::LEASE_MODE_SEARCH || lease.mode() == v1::LEASE_MODE_ROLLOUT)) {
      lookup.add_problem_ids(lease.problem().id());
    }
  }
  if (lookup.problem_ids_size() == 0) return cached;
  v1::LookupSolutionsResponse found;
  grpc::ClientContext context;
  clients_->cache->PrepareContext(context, options_.rpc_timeout);
  RegisterCall(&context);
  const grpc::Status s = clients_->cache_stub->LookupSolutions(&context, lookup, &found);
  UnregisterCall(&context);
  if (!s.ok()) {
    // Searching a cached problem costs time but loses nothing: go on without the cache.
    LogRpcFailure("LookupSolutions", rpc::FromGrpcStatus(s), 1);
    return cached;
  }
  for (const v1::ProblemSolutions& p : found.problems()) {
    for (const v1::StoredSolution& sol : p.solutions()) {
      CachedSolution c;
      c.weight_version = sol.weight_version();
      if (sol.response_tokens_size() > 0) {
        c.tokens.assign(sol.response_tokens().begin(), sol.response_tokens().end());
      } else {
        absl::StatusOr<std::vector<TokenId>> ids = deps_.tokenizer->Encode(sol.response_text());
        if (!ids.ok() || ids->empty()) continue;
        c.tokens = *std::move(ids);
      }
      cached[p.problem_id()].push_back(std::move(c));
    }
  }
  return cached;
}

void Actor::StartLease(const v1::Lease& lease, std::vector<CachedSolution> cached) {
  {
    absl::MutexLock lock(&mu_);
    ++stats_.leases_received;
  }
  const std::string tree_id = absl::StrCat(lease.lease_id(), ".", std::max(1, lease.attempt()));
  TreeTask task;
  task.tree_id = tree_id;
  task.problem = ProblemFromProto(lease.problem());
  if (lease.lease_id().empty()) {
    log::Warning("actor {}: ignoring a lease without a lease_id (problem '{}')", options_.actor_id,
                 task.problem.id);
    return;
  }
  if (task.problem.id.empty()) return FailLease(lease.lease_id(), "the lease's problem has no id");
  absl::StatusOr<std::vector<int32_t>> prompt =
      prompt_format_->Encode(*deps_.tokenizer, task.problem.prompt, options_.max_prompt_tokens);
  if (!prompt.ok()) {
    return FailLease(lease.lease_id(),
                     absl::StrCat("problem '", task.problem.id, "': ", prompt.status().message()));
  }
  task.prompt_tokens = *std::move(prompt);
  const absl::StatusOr<LeaseMode> mode = LeaseModeFromProto(lease.mode());
  if (!mode.ok()) return FailLease(lease.lease_id(), std::string(mode.status().message()));
  LeasePlan plan = PlanLease(*mode, std::move(cached));
  task.mode = plan.mode;
  const bool from_cache = plan.from_cache();
  task.search = SearchParamsFromProto(lease.search());
  task.sampling = SamplingParamsFromProto(lease.sampling());
  if (task.sampling.seed == 0) task.sampling.seed = Hash64(tree_id);
  task.num_trajectories = lease.num_trajectories();
  task.min_weight_version = lease.min_weight_version();
  task.cached = std::move(plan.cached);

  auto state = std::make_unique<LeaseState>();
  state->lease = lease;
  state->tree_id = tree_id;
  state->prompt_tokens = task.prompt_tokens;
  {
    absl::ReleasableMutexLock lock(&mu_);
    if (stopping_) {
      lock.Release();
      return FailLease(lease.lease_id(), "the actor is shutting down");
    }
    if (leases_.count(tree_id) > 0) {
      log::Warning("actor {}: lease {} is already running; ignoring the repeat", options_.actor_id,
                   tree_id);
      return;
    }
    leases_[tree_id] = std::move(state);
    if (from_cache) ++stats_.cached_problems;
  }
  const absl::Status started = runner_->Start(std::move(task), [this, tree_id](TreeResult result) {
    OnTreeDone(tree_id, std::move(result));
  });
  if (!started.ok()) {
    {
      absl::MutexLock lock(&mu_);
      leases_.erase(tree_id);
      cv_.SignalAll();
    }
    FailLease(lease.lease_id(), std::string(started.message()));
  }
}

void Actor::OnTreeDone(const std::string& tree_id, TreeResult result) {
  std::unique_ptr<LeaseState> state;
  {
    absl::MutexLock lock(&mu_);
    auto it = leases_.find(tree_id);
    if (it == leases_.end()) return;
    state = std::move(it->second);
    leases_.erase(it);
    cv_.SignalAll();
  }
  const auto begin = std::chrono::steady_clock::now();
  {
    absl::MutexLock lock(&mu_);
    stats_.tree_seconds += result.stats.bookkeeping_seconds;
    stats_.generated_tokens += result.stats.generated_tokens;
  }
  const v1::Lease& lease = state->lease;
  if (state->revoked) return;  // the learner has let it go
  if (!result.status.ok()) {
    const bool shutting_down = absl::IsCancelled(result.status);
    return FailLease(lease.lease_id(),
                     shutting_down ? "the actor shut down" : std::string(result.status.message()));
  }
  Outgoing item;
  const TrajectoryIds ids{.lease_id = lease.lease_id(),
                          .job_id = lease.job_id(),
                          .problem_id = lease.problem().id(),
                          .tree_id = tree_id};
  std::vector<v1::Solution> solutions;
  for (size_t i = 0; i < result.trajectories.size(); ++i) {
    const ScoredTrajectory& t = result.trajectories[i];
    item.trajectories.push_back(
        TrajectoryToProto(t, ids, static_cast<int32_t>(i), state->prompt_tokens));
    // The tree's sampled tokens ride on its first trajectory, so the learner counts each
    // token once whatever the tree's shape (and a re-sent trajectory not at all).
    if (i == 0) item.trajectories.back().set_tree_generated_tokens(result.stats.generated_tokens);
    if (t.verdict.correct && !t.from_cache && options_.put_solutions &&
        clients_->cache_stub != nullptr) {
      v1::Solution& s = solutions.emplace_back();
      *s.mutable_problem() = lease.problem();
      s.mutable_response_tokens()->Add(t.response_tokens.begin(), t.response_tokens.end());
      s.set_response_text(t.response_text);
      s.set_weight_version(t.versions.empty() ? 0 : t.versions.back().first);
      s.set_trajectory_id(item.trajectories.back().trajectory_id());
    }
  }
  item.completed.push_back(lease.lease_id());
  {
    absl::MutexLock lock(&mu_);
    ++stats_.leases_completed;
    stats_.actor_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    for (v1::Solution& s : solutions) {
      if (static_cast<int32_t>(solutions_.size()) >= options_.max_pending_solutions) {
        solutions_.pop_front();
        ++stats_.solutions_dropped;
      }
      solutions_.push_back(std::move(s));
    }
  }
  Send(std::move(item));
}

// ---------------------------------------------------------------------------------------------
// Renewals.

void Actor::RenewLoop() {
  int64_t failures = 0;
  while (Sleep(options_.renew_interval, /*until_stopped=*/true)) {
    v1::RenewLeaseRequest request;
    request.set_actor_id(options_.actor_id);
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [tree_id, state] : leases_) {
        if (!state->revoked) request.add_lease_ids(state->lease.lease_id());
      }
    }
    if (request.lease_ids_size() == 0) continue;
    v1::RenewLeaseResponse response;
    grpc::ClientContext context;
    clients_->learner->PrepareContext(context, options_.rpc_timeout);
    RegisterCall(&context);
    const grpc::Status s = clients_->learner_stub->RenewLease(&context, request, &response);
    UnregisterCall(&context);
    if (!s.ok()) {
      LogRpcFailure("RenewLease", rpc::FromGrpcStatus(s), ++failures);
      continue;
    }
    failures = 0;
    std::vector<std::string> cancel;
    {
      absl::MutexLock lock(&mu_);
      for (const v1::LeaseRenewal& r : response.renewals()) {
        if (r.renewed()) continue;
        for (auto& [tree_id, state] : leases_) {
          if (state->lease.lease_id() != r.lease_id() || state->revoked) continue;
          state->revoked = true;
          cancel.push_back(tree_id);
          log::Info("actor {}: lease {} ended by the learner ({}); dropping its tree",
                    options_.actor_id, r.lease_id(),
                    r.reason().empty() ? "no reason given" : r.reason());
        }
      }
    }
    for (const std::string& tree_id : cancel) runner_->Cancel(tree_id);
    // Counted once the trees are cancelled, so a reader of the stats never sees a revoked
    // lease whose tree could still take another step.
    absl::MutexLock lock(&mu_);
    stats_.leases_revoked += static_cast<int64_t>(cancel.size());
  }
}

// ---------------------------------------------------------------------------------------------
// Status line.

void Actor::StatusLoop() {
  ActorStats last = stats();
  auto last_time = std::chrono::steady_clock::now();
  while (Sleep(options_.status_interval, /*until_stopped=*/true)) {
    const ActorStats now = stats();
    const auto t = std::chrono::steady_clock::now();
    const double seconds = std::max(1e-9, std::chrono::duration<double>(t - last_time).count());
    log::Info(
        "actor {}: {} trees running; leases {} done, {} failed, {} revoked; trajectories {} sent "
        "({:.1f}/s), {} acked; "
        "weights v{}; {} rpc failures",
        options_.actor_id, now.trees_running, now.leases_completed, now.leases_failed,
        now.leases_revoked, now.trajectories_sent,
        static_cast<double>(now.trajectories_sent - last.trajectories_sent) / seconds,
        now.trajectories_acked, now.weight_version, now.rpc_failures);
    last = now;
    last_time = t;
  }
}

}  // namespace deepsearch
