// The services of `deepsearch run` (cli/run_command.cc) as child processes of the command:
// the cache service, the learner and the actors, each on its own 127.0.0.1 port with its own
// metrics port and log, and the gRPC clients the run follows them with.
//
// RunServices starts them in order, each up before the next (the learner publishes its
// weights to the cache service first thing; the actors subscribe to both), starts again one
// that exits (at most run.max_restarts times each, with a line saying so), and stops them in
// reverse order (actors first: they deliver what they have; then the learner: it checkpoints;
// then the cache service).
//
// Thread-compatible: the run's one thread drives both classes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "deepsearch/v1/cache_service.grpc.pb.h"
#include "deepsearch/v1/problem_service.grpc.pb.h"
#include "search/search_params.h"

#include "cli/child_process.h"
#include "cli/deepsearch_config.h"
#include "common/rpc/channel.h"
#include "common/tasks/problem.h"

namespace deepsearch::cli {

// gRPC clients of the learner's ProblemService and of the cache service.
class RunClients {
 public:
  static absl::StatusOr<RunClients> Connect(const std::string& learner, const std::string& cache,
                                            const RpcConfig& rpc);

  absl::Status WaitForLearner(absl::Duration timeout) const;
  absl::Status WaitForCache(absl::Duration timeout) const;

  // `search`: the job's own search settings (SOLVE jobs), else the learner's. `direct_at`: a
  // SOLVE job of direct samples at that temperature instead of search trees.
  absl::StatusOr<v1::Job> Submit(v1::JobKind kind, const std::string& name,
                                 const std::vector<Problem>& problems, int32_t samples,
                                 const std::string& request_id,
                                 const std::optional<SearchParams>& search = std::nullopt,
                                 std::optional<double> direct_at = std::nullopt) const;
  absl::StatusOr<v1::Job> GetJob(const std::string& id, bool results = false) const;
  absl::StatusOr<v1::CacheStats> CacheStats() const;

 private:
  RunClients(rpc::RpcClient learner, rpc::RpcClient cache);

  rpc::RpcClient learner_;
  rpc::RpcClient cache_;
  std::unique_ptr<v1::ProblemService::Stub> problems_;
  std::unique_ptr<v1::CacheService::Stub> cache_stub_;
};

// SUCCEEDED, FAILED or CANCELLED.
bool Terminal(v1::JobState state);

// Where the services keep their state, and what they start from.
struct ServiceDirs {
  std::string config;  // the effective configuration every child reads
  std::string store;   // the cache service's store
  std::string state;   // the learner's checkpoints
  std::string logs;    // a log file per service
  std::string model;   // the model the learner and the actors start from
};

class RunServices {
 public:
  RunServices(const DeepSearchConfig& config, std::string executable)
      : config_(config), executable_(std::move(executable)) {}
  ~RunServices() { Stop(); }
  RunServices(const RunServices&) = delete;
  RunServices& operator=(const RunServices&) = delete;

  // Starts the cache service, the learner and config.run.actors actors, each up (or, for the
  // actors, started) before the next, within run.startup_timeout. Returns clients of the
  // learner and the cache service; prints the endpoints on stderr.
  absl::StatusOr<RunClients> Start(const ServiceDirs& dirs);
  // Starts again every service that has exited; an error naming the first that has exited
  // more than run.max_restarts times, ending with its log.
  absl::Status Check();
  // Stops every service, in reverse order of their start.
  void Stop();

 private:
  // A service and how to start it again.
  struct Service {
    ChildProcess child;
    std::vector<std::string> args;
    int32_t restarts = 0;
  };
  // Starts `name` with `args` and a metrics port of its own; adds its metrics endpoint.
  absl::Status StartOne(const std::string& name, std::vector<std::string> args,
                        const std::string& logs);

  const DeepSearchConfig& config_;
  std::string executable_;
  std::vector<Service> services_;  // cache, learner, actors: stopped in reverse order
  std::vector<std::string> endpoints_;
};

}  // namespace deepsearch::cli
