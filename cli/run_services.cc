#include "cli/run_services.h"

#include <filesystem>
#include <functional>
#include <iostream>
#include <utility>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "wire/convert.h"

#include "common/core/logging.h"
#include "common/core/status.h"
#include "common/rpc/status_conversion.h"

namespace deepsearch::cli {
namespace {

absl::Status Failed(const grpc::Status& s, const std::string& what) {
  return Annotate(rpc::FromGrpcStatus(s), what);
}

}  // namespace

absl::StatusOr<RunClients> RunClients::Connect(const std::string& learner, const std::string& cache,
                                               const RpcConfig& rpc) {
  DS_ASSIGN_OR_RETURN(rpc::RpcClient l, rpc::RpcClient::Connect(learner, rpc));
  DS_ASSIGN_OR_RETURN(rpc::RpcClient c, rpc::RpcClient::Connect(cache, rpc));
  return RunClients(std::move(l), std::move(c));
}

RunClients::RunClients(rpc::RpcClient learner, rpc::RpcClient cache)
    : learner_(std::move(learner)),
      cache_(std::move(cache)),
      problems_(v1::ProblemService::NewStub(learner_.channel())),
      cache_stub_(v1::CacheService::NewStub(cache_.channel())) {}

absl::Status RunClients::WaitForLearner(absl::Duration timeout) const {
  return learner_.WaitForConnected(timeout);
}

absl::Status RunClients::WaitForCache(absl::Duration timeout) const {
  return cache_.WaitForConnected(timeout);
}

absl::StatusOr<v1::Job> RunClients::Submit(v1::JobKind kind, const std::string& name,
                                           const std::vector<Problem>& problems, int32_t samples,
                                           const std::string& request_id,
                                           const std::optional<SearchParams>& search,
                                           std::optional<double> direct_at) const {
  v1::SubmitProblemSetRequest request;
  request.set_kind(kind);
  request.set_name(name);
  request.set_client_request_id(request_id);
  request.mutable_options()->set_samples_per_problem(samples);
  if (search) *request.mutable_options()->mutable_search() = SearchParamsToProto(*search);
  if (direct_at) {
    request.mutable_options()->set_solve_mode("rollout");
    request.mutable_options()->mutable_sampling()->set_temperature(static_cast<float>(*direct_at));
  }
  for (const Problem& p : problems) *request.add_problems() = ProblemToProto(p);
  v1::Job job;
  auto context = learner_.NewContext(absl::Seconds(60));
  const grpc::Status s = problems_->SubmitProblemSet(context.get(), request, &job);
  if (!s.ok()) return Failed(s, "submitting " + name);
  return job;
}

absl::StatusOr<v1::Job> RunClients::GetJob(const std::string& id, bool results) const {
  v1::GetJobRequest request;
  request.set_job_id(id);
  request.set_include_results(results);
  v1::Job job;
  auto context = learner_.NewContext(absl::Seconds(10));
  const grpc::Status s = problems_->GetJob(context.get(), request, &job);
  if (!s.ok()) return Failed(s, "job " + id);
  return job;
}

absl::StatusOr<v1::CacheStats> RunClients::CacheStats() const {
  v1::GetCacheStatsRequest request;
  v1::CacheStats stats;
  auto context = cache_.NewContext(absl::Seconds(10));
  const grpc::Status s = cache_stub_->GetCacheStats(context.get(), request, &stats);
  if (!s.ok()) return Failed(s, "cache stats");
  return stats;
}

bool Terminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

absl::Status RunServices::StartOne(const std::string& name, std::vector<std::string> args,
                                   const std::string& logs) {
  // Every service serves its metrics for Prometheus on a port of its own.
  DS_ASSIGN_OR_RETURN(const int metrics_port, FreeLoopbackPort());
  const std::string metrics = absl::StrCat("127.0.0.1:", metrics_port);
  args.insert(args.end(), {"--set", "metrics.listen_address=" + metrics});
  endpoints_.push_back(absl::StrCat(name, " http://", metrics, "/metrics"));
  const std::string log = (std::filesystem::path(logs) / (name + ".log")).string();
  DS_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Start(name, executable_, args, log));
  log::Info("run: started {} (pid {}), log {}", name, child.pid(), log);
  services_.push_back(Service{std::move(child), std::move(args)});
  return absl::OkStatus();
}

absl::StatusOr<RunClients> RunServices::Start(const ServiceDirs& dirs) {
  const RunSection& run = config_.run;
  DS_ASSIGN_OR_RETURN(const int cache_port, FreeLoopbackPort());
  DS_ASSIGN_OR_RETURN(const int learner_port, FreeLoopbackPort());
  const std::string cache = absl::StrCat("127.0.0.1:", cache_port);
  const std::string learner = absl::StrCat("127.0.0.1:", learner_port);
  DS_ASSIGN_OR_RETURN(RunClients clients, RunClients::Connect(learner, cache, config_.rpc));
  const absl::Time deadline = absl::Now() + run.startup_timeout;
  // Waits until `connected` (a one-second wait on one service's channel) succeeds.
  auto wait = [&](const std::function<absl::Status()>& connected) -> absl::Status {
    while (!connected().ok()) {
      DS_RETURN_IF_ERROR(Check());
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(absl::StrCat("the services did not come up within ",
                                                        absl::FormatDuration(run.startup_timeout),
                                                        " (logs in ", dirs.logs, ")"));
      }
    }
    return absl::OkStatus();
  };
  DS_RETURN_IF_ERROR(StartOne(
      "cache", {"cache", "--config", dirs.config, "--listen", cache, "--store-dir", dirs.store},
      dirs.logs));
  DS_RETURN_IF_ERROR(wait([&] { return clients.WaitForCache(absl::Seconds(1)); }));
  std::vector<std::string> learner_args = {"learner",  "--config",    dirs.config, "--listen",
                                           learner,    "--cache",     cache,       "--model",
                                           dirs.model, "--state-dir", dirs.state};
  std::vector<std::string> actor_args = {"actor",   "--config", dirs.config, "--learner", learner,
                                         "--cache", cache,      "--model",   dirs.model};
  if (run.weights_by_file) {
    // One host: versions are written once, into the cache's import directory, and mapped.
    const std::string import_dir =
        config_.cache.weight_import_dir.empty()
            ? (std::filesystem::path(dirs.store) / "weights" / "incoming").string()
            : config_.cache.weight_import_dir;
    learner_args.insert(learner_args.end(),
                        {"--set", absl::StrCat("learner.cache_import_dir=", import_dir)});
    actor_args.insert(actor_args.end(), {"--set", "actor.weights_by_file=true"});
  }
  DS_RETURN_IF_ERROR(StartOne("learner", learner_args, dirs.logs));
  DS_RETURN_IF_ERROR(wait([&] { return clients.WaitForLearner(absl::Seconds(1)); }));
  for (int32_t i = 0; i < run.actors; ++i) {
    const std::string name = absl::StrCat("actor-", i);
    std::vector<std::string> args = actor_args;
    args.insert(args.end(), {"--actor-id", name});
    DS_RETURN_IF_ERROR(StartOne(name, args, dirs.logs));
  }
  std::cerr << "[run] services up: cache service " << cache << ", learner " << learner << ", "
            << run.actors << " actor(s); logs in " << dirs.logs
            << "\n[run] metrics: " << absl::StrJoin(endpoints_, ", ") << "\n";
  return clients;
}

absl::Status RunServices::Check() {
  const RunSection& run = config_.run;
  for (Service& service : services_) {
    ChildProcess& child = service.child;
    const std::optional<int> status = child.Poll();
    if (!status.has_value()) continue;
    const std::string what =
        absl::StrCat("the ", child.name(), " exited with status ", *status,
                     *status > 128 ? absl::StrCat(" (signal ", *status - 128, ")") : "");
    if (service.restarts >= run.max_restarts) {
      return absl::InternalError(absl::StrCat(what, " and was restarted ", service.restarts,
                                              " times already (run.max_restarts); the end of ",
                                              child.log_path(), ":\n", child.LogTail()));
    }
    ++service.restarts;
    std::cerr << "[run] " << what << "; restarting it (restart " << service.restarts << " of "
              << run.max_restarts << ", log " << child.log_path() << ")\n";
    log::Warning("run: {}; restarting it (restart {} of {})", what, service.restarts,
                 run.max_restarts);
    DS_ASSIGN_OR_RETURN(
        ChildProcess restarted,
        ChildProcess::Start(child.name(), executable_, service.args, child.log_path()));
    child = std::move(restarted);
  }
  return absl::OkStatus();
}

void RunServices::Stop() {
  for (auto it = services_.rbegin(); it != services_.rend(); ++it) {
    const int status = it->child.Stop(config_.run.stop_timeout);
    if (status != 0) log::Warning("run: {} exited with status {}", it->child.name(), status);
  }
  services_.clear();
}

}  // namespace deepsearch::cli
