// deepsearch cache [--config FILE] [--set KEY=VALUE]... [--listen ADDR] [--store-dir DIR]: run
// the cache service until SIGINT or SIGTERM (cache_service/cache_service.h): the durable store
// of re-verified solutions (STORE/solutions.db) and the weight versions the learner publishes
// and the actors subscribe to (STORE/weights/).
//
// Starting again with the same store directory continues with every acknowledged solution
// and the kept weight versions. A status line is logged every cache.status_interval.
#include <signal.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cache_service/cache_service.h"
#include "cli/commands.h"
#include "cli/deepsearch_config.h"
#include "cli/periodic.h"
#include "cli/service_metrics.h"
#include "cli/signals.h"
#include "common/core/logging.h"
#include "common/rpc/server.h"

namespace deepsearch::cli {
namespace {

struct CacheArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string listen;
  std::string store_dir;
};

// The service's counters and rates since the previous line, for the periodic status line.
class CacheStatus {
 public:
  explicit CacheStatus(const CacheServiceImpl& service)
      : service_(service), last_(service.counters()), last_time_(absl::Now()) {}

  void Log() {
    const v1::CacheStats s = service_.Stats();
    const CacheServiceCounters now = service_.counters();
    const double seconds = absl::ToDoubleSeconds(absl::Now() - last_time_);
    const double hit = s.lookups() > 0 ? 100.0 * static_cast<double>(s.lookup_hits()) /
                                             static_cast<double>(s.lookups())
                                       : 0.0;
    log::Info(
        "cache: {} problems, {} solutions, {} duplicates, {} rejected; lookups {} ({:.0f}% hit); "
        "weights v{} ({} kept), {} subscribers, {:.1f} MB/s sent",
        s.problems(), s.solutions(), s.duplicates(), s.rejected(), s.lookups(), hit,
        s.latest_weight_version(), s.weight_versions_kept(), now.subscribers,
        static_cast<double>(now.weight_bytes_sent - last_.weight_bytes_sent) / seconds / 1e6);
    last_ = now;
    last_time_ = absl::Now();
  }

 private:
  const CacheServiceImpl& service_;
  CacheServiceCounters last_;
  absl::Time last_time_;
};

int RunCache(const CacheArgs& args) {
  BlockTerminationSignals();  // before any thread starts
  auto fail = [](const absl::Status& s) {
    std::cerr << "deepsearch cache: " << s.message() << "\n";
    return kExitFailure;
  };
  std::vector<std::string> overrides = args.overrides;
  if (!args.listen.empty()) overrides.push_back("cache.listen_address=" + args.listen);
  if (!args.store_dir.empty()) overrides.push_back("cache.store_dir=" + args.store_dir);
  absl::StatusOr<DeepSearchConfig> config = LoadDeepSearchConfig(args.config, overrides);
  if (!config.ok()) return fail(config.status());
  if (absl::Status s = ConfigureMalloc(config->runtime); !s.ok()) return fail(s);
  const CacheOptions& options = config->cache;

  std::error_code ec;
  std::filesystem::create_directories(options.store_dir, ec);
  if (ec) {
    return fail(absl::PermissionDeniedError(
        absl::StrCat("cannot create the store directory ", options.store_dir, ": ", ec.message())));
  }
  absl::StatusOr<std::unique_ptr<SolutionStore>> solutions = SolutionStore::Open(
      options.store_dir + "/solutions.db", {.max_response_bytes = options.max_response_bytes});
  if (!solutions.ok()) return fail(solutions.status());
  absl::StatusOr<std::unique_ptr<WeightStore>> weights =
      WeightStore::Open({.dir = options.store_dir + "/weights",
                         .keep_versions = options.weight_versions_kept,
                         .zstd_level = options.delta_zstd_level,
                         .import_dir = options.weight_import_dir});
  if (!weights.ok()) return fail(weights.status());
  absl::StatusOr<rpc::ServerAuth> auth = rpc::ServerAuth::FromConfig(config->rpc.auth);
  if (!auth.ok()) return fail(auth.status());
  const std::unique_ptr<rpc::StreamLimiter> streams = rpc::PerCallerStreamLimiter(config->rpc);
  CacheServiceImpl service(solutions->get(), weights->get(), options, *auth, streams.get());
  absl::StatusOr<std::unique_ptr<rpc::GrpcServer>> server = rpc::GrpcServer::Start(
      {.name = "cache", .listen_address = options.listen_address, .rpc = config->rpc},
      {{&service, "deepsearch.v1.CacheService"}});
  if (!server.ok()) return fail(server.status());
  absl::StatusOr<std::unique_ptr<rpc::MetricsHttpServer>> metrics = rpc::StartMetricsEndpoint(
      config->metrics, config->rpc.tls, "cache", &MetricsRegistry::Default(), [&service] {
        const v1::CacheStats c = service.Stats();
        SetGauges({
            {"deepsearch_cache_problems", "Problems with a stored solution", double(c.problems())},
            {"deepsearch_cache_solutions", "Stored verified solutions", double(c.solutions())},
            {"deepsearch_cache_duplicate_solutions", "Repeated submissions",
             double(c.duplicates())},
            {"deepsearch_cache_rejected_solutions", "Solutions refused", double(c.rejected())},
            {"deepsearch_cache_lookups", "Problem ids looked up", double(c.lookups())},
            {"deepsearch_cache_lookup_hits", "Lookups that found a solution",
             double(c.lookup_hits())},
            {"deepsearch_cache_weight_version", "Newest stored weight version",
             double(c.latest_weight_version())},
            {"deepsearch_cache_subscribers", "Open weight subscriptions", double(c.subscribers())},
        });
      });
  if (!metrics.ok()) return fail(metrics.status());
  const SolutionStoreStats s = (*solutions)->stats();
  log::Info("cache: serving on {} (store {}: {} problems, {} solutions; weight version {})",
            (*server)->dial_address(), options.store_dir, s.problems, s.solutions,
            (*weights)->latest_version());
  int signal = 0;
  {
    CacheStatus status(service);
    Periodic status_line(options.status_interval, [&status] { status.Log(); });
    signal = WaitForTerminationSignal();
  }
  log::Info("cache: {} received; stopping", signal == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->SetServing(false);
  (*weights)->Close();  // ends the subscriptions
  (*server)->Shutdown(absl::Seconds(5));
  return kExitOk;
}

}  // namespace

void AddCacheCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<CacheArgs>();
  CLI::App* cmd = app.add_subcommand(
      "cache", "Run the cache service: verified solutions and weight distribution to actors");
  cmd->add_option("--config", args->config, "Config file (the cache and rpc sections)");
  cmd->add_option("--set", args->overrides, "Override a config key: KEY=VALUE (repeatable)");
  cmd->add_option("--listen", args->listen, "host:port to serve on (cache.listen_address)");
  cmd->add_option("--store-dir", args->store_dir,
                  "Directory of solutions.db and weights/ (cache.store_dir)");
  cmd->callback([args, &exit_code] { exit_code = RunCache(*args); });
}

}  // namespace deepsearch::cli
