// deepsearch learner [--config FILE] [--set KEY=VALUE]... [--model DIR] [--state-dir DIR]
// [--listen ADDR] [--cache ADDR] [--mode sync|async]: run the learner until SIGINT or SIGTERM
// (learner/learner.h): it serves LearnerService and ProblemService, trains the submitted
// TRAIN jobs one at a time, solves SOLVE jobs, checkpoints into the state directory and
// publishes every weight version to the cache service.
//
// Starting again with the same state directory resumes from the latest checkpoint; jobs and
// their progress are kept. On a signal the learner stops serving, finishes the training step
// in progress, writes a checkpoint and exits 0. A status line is logged every
// learner.status_interval.
//
// Data parallel (learner.data_parallel.world_size > 1): start one process per rank with the
// same config and its own learner.data_parallel.rank. Rank 0 is the learner above; the other
// ranks only join the process group and train their share of every step, and exit when rank
// 0 stops. A broken group makes rank 0 exit 1 without a checkpoint (the last one stands).
#include <signal.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

#include "cli/commands.h"
#include "cli/deepsearch_config.h"
#include "cli/periodic.h"
#include "cli/service_metrics.h"
#include "cli/signals.h"
#include "common/core/logging.h"
#include "common/model/torch_runtime.h"
#include "common/rpc/server.h"
#include "learner/data_parallel.h"
#include "learner/learner.h"
#include "learner/learner_service.h"
#include "learner/weight_publisher.h"

namespace deepsearch::cli {
namespace {

struct LearnerArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string model;
  std::string state_dir;
  std::string listen;
  std::string cache;
  std::string mode;
};

// The learner's counters and rates since the previous line, for the periodic status line.
class LearnerStatus {
 public:
  explicit LearnerStatus(const Learner& learner)
      : learner_(learner), last_(learner.stats()), last_time_(absl::Now()) {}

  void Log() {
    const LearnerStats now = learner_.stats();
    const double seconds = absl::ToDoubleSeconds(absl::Now() - last_time_);
    log::Info(
        "learner: version {}, {} steps, {} trajectories ({:.1f}/s), {} tokens ({:.0f}/s), "
        "leases {} pending / {} issued / {} expired, {} duplicates, {} rejected, {} stale trees",
        now.weight_version, now.training_steps, now.trajectories,
        static_cast<double>(now.trajectories - last_.trajectories) / seconds, now.generated_tokens,
        static_cast<double>(now.generated_tokens - last_.generated_tokens) / seconds,
        now.leases.pending, now.leases.issued, now.leases.expired, now.duplicates, now.rejected,
        now.stale_trees);
    if (!now.waiting_for.empty())
      log::Warning("learner: waiting: {} (no training lease is issued meanwhile)", now.waiting_for);
    last_ = now;
    last_time_ = absl::Now();
  }

 private:
  const Learner& learner_;
  LearnerStats last_;
  absl::Time last_time_;
};

int RunLearner(const LearnerArgs& args) {
  BlockTerminationSignals();  // before any thread starts
  auto fail = [](const absl::Status& s) {
    std::cerr << "deepsearch learner: " << s.message() << "\n";
    return kExitFailure;
  };
  std::vector<std::string> overrides = args.overrides;
  if (!args.model.empty()) overrides.push_back("learner.model=" + args.model);
  if (!args.state_dir.empty()) overrides.push_back("learner.state_dir=" + args.state_dir);
  if (!args.listen.empty()) overrides.push_back("learner.listen_address=" + args.listen);
  if (!args.cache.empty()) overrides.push_back("learner.cache_address=" + args.cache);
  if (!args.mode.empty()) overrides.push_back("learner.mode=" + args.mode);
  absl::StatusOr<DeepSearchConfig> config = LoadDeepSearchConfig(args.config, overrides);
  if (!config.ok()) return fail(config.status());
  if (absl::Status s = ConfigureTorchRuntime(config->runtime); !s.ok()) return fail(s);
  LearnerOptions options = config->learner;
  options.search = config->search;
  options.sampling = config->sampling;

  // Data parallel: every rank joins the group first; rank 0 goes on as the learner, the
  // others train their share of each step until rank 0 stops them.
  absl::StatusOr<std::unique_ptr<GradientReducer>> reducer =
      CreateGradientReducer(options.data_parallel);
  if (!reducer.ok()) return fail(reducer.status());
  if ((*reducer)->rank() != 0) {
    // Ranks > 0 serve only the gRPC health service, on learner.listen_address, so the same
    // probes fit every pod of a learner StatefulSet; rank 0 alone serves the learner's API.
    absl::StatusOr<std::unique_ptr<rpc::GrpcServer>> health = rpc::GrpcServer::Start(
        {.name = absl::StrCat("learner rank ", (*reducer)->rank(), " (health only)"),
         .listen_address = options.listen_address,
         .rpc = config->rpc},
        {});
    if (!health.ok()) return fail(health.status());
    const absl::Status s = RunTrainingWorker(options, **reducer);
    (*health)->Shutdown(absl::Seconds(1));
    if (!s.ok()) return fail(s);
    return kExitOk;
  }

  std::unique_ptr<CacheWeightPublisher> publisher;
  if (!options.cache_address.empty()) {
    absl::StatusOr<std::unique_ptr<CacheWeightPublisher>> p =
        CacheWeightPublisher::Connect(options.cache_address, config->rpc, options.publish_timeout,
                                      {.import_dir = options.cache_import_dir});
    if (!p.ok()) return fail(p.status());
    publisher = std::move(*p);
  } else {
    log::Warning("learner: no cache service address: weights are not published");
  }
  absl::StatusOr<std::unique_ptr<Learner>> learner =
      Learner::Create(options, publisher.get(), reducer->get());
  if (!learner.ok()) return fail(learner.status());
  absl::StatusOr<rpc::ServerAuth> auth = rpc::ServerAuth::FromConfig(config->rpc.auth);
  if (!auth.ok()) return fail(auth.status());
  LearnerServiceImpl learner_service(learner->get(), *auth);
  ProblemServiceImpl problem_service(learner->get(), *auth);
  absl::StatusOr<std::unique_ptr<rpc::GrpcServer>> server = rpc::GrpcServer::Start(
      {.name = "learner", .listen_address = options.listen_address, .rpc = config->rpc},
      {{&learner_service, "deepsearch.v1.LearnerService"},
       {&problem_service, "deepsearch.v1.ProblemService"}});
  if (!server.ok()) return fail(server.status());
  const Learner& served = **learner;
  absl::StatusOr<std::unique_ptr<rpc::MetricsHttpServer>> metrics =
      rpc::StartMetricsEndpoint(config->metrics, "learner", &MetricsRegistry::Default(), [&served] {
        const LearnerStats s = served.stats();
        SetGauges({
            {"deepsearch_learner_weight_version", "Newest weight version",
             double(s.weight_version)},
            {"deepsearch_learner_training_steps", "Training steps taken", double(s.training_steps)},
            {"deepsearch_learner_trajectories", "Trajectories ingested", double(s.trajectories)},
            {"deepsearch_learner_duplicate_trajectories", "Repeated deliveries",
             double(s.duplicates)},
            {"deepsearch_learner_rejected_trajectories", "Trajectories refused",
             double(s.rejected)},
            {"deepsearch_learner_stale_trees", "Trees dropped by max_policy_lag",
             double(s.stale_trees)},
            {"deepsearch_learner_generated_tokens", "Response tokens generated by actors",
             double(s.generated_tokens)},
            {"deepsearch_learner_checkpoints", "Checkpoints written", double(s.checkpoints)},
            {"deepsearch_learner_all_wrong_group_share",
             "Share of the last step's groups with no correct trajectory", s.all_wrong_group_share},
            {"deepsearch_learner_all_wrong_mean_advantage",
             "Mean advantage over the tokens of the last step's all-wrong groups",
             s.all_wrong_mean_advantage},
            {"deepsearch_learner_unpublished_weight_version",
             "Weight version waiting to be published (0: none); training leases wait for it",
             double(s.unpublished_version)},
            {"deepsearch_learner_leases_pending", "Leases waiting for an actor",
             double(s.leases.pending)},
            {"deepsearch_learner_leases_issued", "Leases held by actors", double(s.leases.issued)},
            {"deepsearch_learner_leases_expired",
             "Lease attempts whose deadline passed (re-issued or failed)",
             double(s.leases.expired)},
        });
      });
  if (!metrics.ok()) return fail(metrics.status());
  log::Info("learner: serving on {} (state {}, {} mode, weight version {})",
            (*server)->dial_address(), options.state_dir, LearnerModeName(options.mode),
            (*learner)->weight_version());
  (*learner)->Start();
  int signal = 0;
  {
    LearnerStatus status(**learner);
    Periodic status_line(absl::Seconds(30), [&status] { status.Log(); });
    signal = WaitForTerminationSignalOr([&] { return !(*learner)->failure().ok(); });
  }
  if (signal != 0)
    log::Info("learner: {} received; stopping", signal == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->SetServing(false);
  (*server)->Shutdown(absl::Seconds(5));
  if (absl::Status s = (*learner)->Shutdown(); !s.ok()) return fail(s);
  return kExitOk;
}

}  // namespace

void AddLearnerCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<LearnerArgs>();
  CLI::App* cmd = app.add_subcommand(
      "learner", "Run the learner: serve leases and jobs, train with Tree-GRPO, checkpoint");
  cmd->add_option("--config", args->config, "Config file (the learner, search, rpc sections)");
  cmd->add_option("--set", args->overrides, "Override a config key: KEY=VALUE (repeatable)");
  cmd->add_option("--model", args->model, "Initial model directory (learner.model)");
  cmd->add_option("--state-dir", args->state_dir, "State directory (learner.state_dir)");
  cmd->add_option("--listen", args->listen, "host:port to serve on (learner.listen_address)");
  cmd->add_option("--cache", args->cache, "host:port of the cache service (learner.cache_address)");
  cmd->add_option("--mode", args->mode, "sync or async (learner.mode)");
  cmd->callback([args, &exit_code] { exit_code = RunLearner(*args); });
}

}  // namespace deepsearch::cli
