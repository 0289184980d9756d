// deepsearch run [--dir DIR] [--config FILE] [--set KEY=VALUE]... [--actors N]
//                [--warm-start-only]: the whole method on one machine, as separate processes
// talking gRPC on 127.0.0.1.
//
//   1. data        the training set and the held-out set of the `run.task` family
//                  (DIR/data/*.jsonl; the held-out set is the warm start's evaluation set,
//                  never trained on);
//   2. warm start  a `run.preset` model from scratch (DIR/init-model), then `deepsearch sft`
//                  on the family's worked solutions (DIR/sft-model);
//   3. services    `deepsearch cache`, `deepsearch learner` and `run.actors` x `deepsearch
//                  actor`, each a child process on its own port, logging to DIR/logs;
//   4. training    one TRAIN job with the training set (the learner screens the hard subset,
//                  then trains with DeepSearch), and every `run.eval_every` training steps the
//                  held-out evaluations (cli/run_evaluation.h): `run.eval_direct_samples` direct
//                  samples per problem at each of `run.eval_temperatures` (the headline:
//                  pass@1 of the policy, as the paper measures it) and, secondary, a search
//                  tree of `run.eval_samples` leaves per problem;
//   5. the end     the last checkpoint exported to DIR/final-model, the services stopped, a
//                  summary (also DIR/summary.txt) and DIR/heldout_accuracy.png: held-out
//                  accuracy against generated tokens (gnuplot).
//
// A progress line shows the phase, the training step, trajectories/s, generated tokens/s,
// the latest held-out accuracy, the cache's hit ratio and an ETA; DIR/metrics/progress.jsonl
// samples the same every run.status_interval, DIR/metrics/eval.csv holds every held-out
// evaluation and DIR/metrics/eval_pass_at_k.csv their pass@k curves. Every service also serves its
// metrics for Prometheus (metrics.* config). A service that exits is started again with the same
// arguments, at most run.max_restarts times each (a line says so): an actor rejoins (the learner
// re-issues its expired leases), the learner resumes from its checkpoint, the cache service from
// its store.
//
// Configuration: the embedded default (configs/run.yaml, compiled in) or --config FILE, then
// --set overrides; the effective configuration is written to DIR/config.yaml, which every
// child reads. Ctrl-C (SIGINT) or SIGTERM stops the actors, then the learner (it writes a
// checkpoint), then the cache service, and exits 130; running the command again with the same
// directory resumes: data and warm start are kept, the learner continues from its checkpoint,
// jobs are found again by their request ids. Exit codes: 0 done, 1 failed (a service died more
// than run.max_restarts times, a job failed, bad configuration), 2 usage, 130 interrupted.
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "trainer/sft.h"

#include "cli/child_process.h"
#include "cli/commands.h"
#include "cli/deepsearch_config.h"
#include "cli/run_evaluation.h"
#include "cli/run_services.h"
#include "cli/signals.h"
#include "common/core/files.h"
#include "common/core/logging.h"
#include "common/core/progress.h"
#include "common/core/rng.h"
#include "common/core/status.h"
#include "common/model/model_dir.h"
#include "common/tasks/dataset.h"
#include "common/tasks/task.h"
#include "learner/learner.h"

namespace deepsearch::cli {

extern const char kRunDefaultsYaml[];

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr int kExitInterrupted = 130;

struct RunArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string dir;
  int32_t actors = 0;
  bool print_config = false;
  bool warm_start_only = false;
};

// Where everything goes.
struct RunPaths {
  explicit RunPaths(const std::string& dir)
      : root(dir),
        config(root / "config.yaml"),
        train(root / "data" / "train.jsonl"),
        heldout(root / "data" / "heldout.jsonl"),
        init_model(root / "init-model"),
        sft_model(root / "sft-model"),
        state(root / "learner"),
        store(root / "cache"),
        logs(root / "logs"),
        progress(root / "metrics" / "progress.jsonl"),
        eval(root / "metrics" / "eval.csv"),
        eval_pass_at_k(root / "metrics" / "eval_pass_at_k.csv"),
        final_model(root / "final-model"),
        plot(root / "heldout_accuracy.png"),
        summary(root / "summary.txt") {}
  fs::path root, config, train, heldout, init_model, sft_model, state, store, logs, progress, eval,
      eval_pass_at_k, final_model, plot, summary;
};

// A signal arrived: the run stops where it is.
struct Interrupted {
  int signal = 0;
};

// Sleeps up to `d`, returning early with the signal when SIGINT or SIGTERM arrives.
std::optional<Interrupted> Sleep(absl::Duration d) {
  const absl::Time until = absl::Now() + d;
  const int signal = WaitForTerminationSignalOr([&] { return absl::Now() >= until; });
  if (signal != 0) return Interrupted{signal};
  return std::nullopt;
}

absl::Status WriteProblems(const fs::path& path, const std::vector<Problem>& problems) {
  std::error_code error;
  fs::create_directories(path.parent_path(), error);
  const std::string partial = path.string() + ".partial";
  DS_RETURN_IF_ERROR(WriteProblemsJsonlFile(partial, problems));
  fs::rename(partial, path, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot write ", path.string(), ": ", error.message()));
  }
  return absl::OkStatus();
}

// The held-out set (the warm start's evaluation problems) and a training set drawn from its
// own seed stream without them. Kept when present: a resumed run trains on the same sets.
absl::Status PrepareData(const RunSection& run, const RunPaths& paths, const SftConfig& sft) {
  if (fs::exists(paths.train) && fs::exists(paths.heldout)) return absl::OkStatus();
  DS_ASSIGN_OR_RETURN(const std::vector<Problem> heldout, SftHeldOutProblems(sft));
  std::set<std::string> taken;
  for (const Problem& p : heldout) taken.insert(p.id);
  DS_ASSIGN_OR_RETURN(std::unique_ptr<TaskFamily> family, MakeTaskFamily(run.task));
  const Rng root(DeriveSeed(run.seed, "run.train"));
  std::vector<Problem> train;
  for (uint64_t draw = 0; static_cast<int32_t>(train.size()) < run.train_problems; ++draw) {
    if (draw > 100 * static_cast<uint64_t>(run.train_problems) + 10000) {
      return absl::FailedPreconditionError(absl::StrCat(
          "task ", run.task, " has too few distinct problems for ", run.train_problems,
          " training and ", run.heldout_problems, " held-out problems (lower run.train_problems)"));
    }
    Rng rng = root.Fork(draw);
    Problem p = family->Generate(rng);
    if (taken.insert(p.id).second) train.push_back(std::move(p));
  }
  DS_RETURN_IF_ERROR(WriteProblems(paths.heldout, heldout));
  return WriteProblems(paths.train, train);
}

// ---- Held-out evaluations ------------------------------------------------------------------

std::string Duration(absl::Duration d) {
  const int64_t s = absl::ToInt64Seconds(d);
  return s >= 60 ? absl::StrFormat("%dm%02ds", s / 60, s % 60) : absl::StrFormat("%ds", s);
}

// ---- The run ---------------------------------------------------------------------------------

class Run {
 public:
  Run(DeepSearchConfig config, std::string executable)
      : config_(std::move(config)),
        run_(config_.run),
        paths_(run_.dir),
        executable_(std::move(executable)),
        start_(absl::Now()),
        services_(config_, executable_),
        eval_kinds_(
            EvalKinds(run_.eval_direct_samples, run_.eval_temperatures, run_.eval_samples)) {}

  // The whole run; returns the exit code.
  // warm_start_only: stop after the data and the warm start (--warm-start-only).
  int Main(bool warm_start_only);

 private:
  absl::Status Prepare();
  // Runs `deepsearch sft` unless its model is there; std::nullopt when done.
  absl::StatusOr<std::optional<Interrupted>> WarmStart();
  absl::Status StartServices() {
    DS_ASSIGN_OR_RETURN(RunClients clients, services_.Start({.config = paths_.config.string(),
                                                             .store = paths_.store.string(),
                                                             .state = paths_.state.string(),
                                                             .logs = paths_.logs.string(),
                                                             .model = StartModel()}));
    clients_.emplace(std::move(clients));
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<Interrupted>> Train();
  absl::Status Finish();
  void StopServices() { services_.Stop(); }
  absl::Status ScheduleEvaluations(const v1::Job& train, bool final);
  void Sample(const v1::Job& train, const std::optional<v1::CacheStats>& cache);
  std::string StartModel() const {
    return (run_.sft_steps > 0 ? paths_.sft_model : paths_.init_model).string();
  }

  DeepSearchConfig config_;
  const RunSection& run_;
  RunPaths paths_;
  std::string executable_;
  absl::Time start_;

  RunServices services_;
  std::optional<RunClients> clients_;
  std::string train_job_id_;
  std::vector<Problem> heldout_;
  std::vector<EvalKind> eval_kinds_;  // of every evaluation point, the headline first
  std::vector<Evaluation> evals_;
  v1::Job last_train_;
  std::optional<v1::CacheStats> last_cache_;

  // Rates between samples.
  absl::Time last_sample_time_ = absl::InfinitePast();
  int64_t last_trajectories_ = 0;
  int64_t last_tokens_ = 0;
  std::unique_ptr<ProgressReporter> progress_;
};

absl::Status Run::Prepare() {
  std::error_code error;
  fs::create_directories(paths_.logs, error);
  fs::create_directories(paths_.root / "metrics", error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create ", paths_.root.string(), ": ", error.message()));
  }
  // Children read the effective configuration from the run directory.
  DS_RETURN_IF_ERROR(WriteFileAtomically(paths_.config.string(), DocumentConfig(config_)));
  SftConfig sft;
  sft.task = run_.task;
  sft.seed = run_.seed;
  sft.eval_problems = run_.heldout_problems;
  DS_RETURN_IF_ERROR(PrepareData(run_, paths_, sft));
  DS_ASSIGN_OR_RETURN(ProblemSet heldout, ReadProblemsJsonlFile(paths_.heldout.string()));
  if (!heldout.errors.empty()) {
    return absl::DataLossError(absl::StrCat(paths_.heldout.string(), ": ", heldout.ErrorSummary()));
  }
  heldout_ = std::move(heldout.problems);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Interrupted>> Run::WarmStart() {
  if (!fs::exists(paths_.init_model / "config.json")) {
    DS_RETURN_IF_ERROR(
        InitModelDirectory(run_.preset, paths_.init_model.string(), run_.seed, true));
    log::Info("run: initialised a {} model from scratch in {}", run_.preset,
              paths_.init_model.string());
  }
  if (run_.sft_steps == 0 || fs::exists(paths_.sft_model / "config.json")) return std::nullopt;
  std::cerr << "[run] warm start: " << run_.sft_steps << " supervised steps on worked " << run_.task
            << " solutions\n";
  DS_ASSIGN_OR_RETURN(
      ChildProcess sft,
      ChildProcess::Start(
          "warm start", executable_,
          {"sft", "--model", paths_.init_model.string(), "--task", run_.task, "--steps",
           std::to_string(run_.sft_steps), "--batch", std::to_string(run_.sft_batch), "--seed",
           std::to_string(run_.seed), "--eval", std::to_string(run_.heldout_problems), "--out",
           paths_.sft_model.string()},
          ""));
  while (true) {
    if (std::optional<int> status = sft.Poll()) {
      if (*status != 0) {
        return absl::InternalError(
            absl::StrCat("the warm start (deepsearch sft) exited with ", *status));
      }
      return std::nullopt;
    }
    if (std::optional<Interrupted> i = Sleep(absl::Milliseconds(200))) {
      sft.Stop(run_.stop_timeout);
      return i;
    }
  }
}

absl::Status Run::ScheduleEvaluations(const v1::Job& train, bool final) {
  const int64_t step = train.progress().training_steps();
  // Pending evaluations first: one point at a time (its jobs together), so each measures one
  // moment.
  bool pending = false;
  for (Evaluation& e : evals_) {
    if (e.done) continue;
    DS_ASSIGN_OR_RETURN(v1::Job job, clients_->GetJob(e.job_id));
    if (!Terminal(job.state())) {
      pending = true;
      continue;
    }
    DS_ASSIGN_OR_RETURN(job, clients_->GetJob(e.job_id, /*results=*/true));
    if (job.state() != v1::JOB_STATE_SUCCEEDED) {
      return absl::InternalError(absl::StrCat("held-out evaluation ", e.job_id, " ended ",
                                              v1::JobState_Name(job.state()), ": ", job.error()));
    }
    e.done = true;
    e.weight_version = job.progress().weight_version();
    e.eval_tokens = job.progress().generated_tokens();
    e.problems.clear();
    for (const v1::ProblemResult& r : job.results())
      e.problems.emplace_back(r.samples(), r.correct_samples());
    log::Info("run: held-out at step {} ({}): pass@1 {:.1f}% ({} of {} samples), pass@{} {:.1f}%",
              e.step, e.kind.Label(), 100.0 * e.accuracy(), e.correct_samples(), e.samples(),
              e.kind.samples, 100.0 * e.pass_at_n());
    DS_RETURN_IF_ERROR(WriteEvaluations(paths_.eval, paths_.eval_pass_at_k, evals_));
  }
  if (pending) return absl::OkStatus();
  const int64_t next = evals_.empty() ? 0 : evals_.back().step + run_.eval_every;
  const bool due = step >= next || (final && (evals_.empty() || evals_.back().step < step));
  if (!due) return absl::OkStatus();
  const int64_t at = step >= next ? next : step;  // every multiple in turn, then the end
  const v1::JobProgress& p = train.progress();
  for (const EvalKind& kind : eval_kinds_) {
    Evaluation e;
    e.step = at;
    e.generated_tokens = p.generated_tokens();
    e.screening_tokens = p.screening_tokens();
    e.trained_tokens = p.trained_tokens();
    e.kind = kind;
    DS_ASSIGN_OR_RETURN(
        const v1::Job job,
        clients_->Submit(v1::JOB_KIND_SOLVE, EvaluationName(e), heldout_, kind.samples,
                         absl::StrCat("deepsearch-run/eval/", at, "/", kind.Label()),
                         EvaluationSearch(config_.search),
                         kind.direct ? std::optional<double>(kind.temperature) : std::nullopt));
    (void)ParseEvaluationName(job.name(), e);  // a resumed run: the counts of the first submit
    e.job_id = job.job_id();
    evals_.push_back(std::move(e));
  }
  return absl::OkStatus();
}

void Run::Sample(const v1::Job& train, const std::optional<v1::CacheStats>& cache) {
  const absl::Time now = absl::Now();
  const v1::JobProgress& p = train.progress();
  const double seconds = absl::ToDoubleSeconds(now - last_sample_time_);
  const bool first = last_sample_time_ == absl::InfinitePast();
  const double trajectories_per_s =
      first ? 0.0 : static_cast<double>(p.trajectories() - last_trajectories_) / seconds;
  const double tokens_per_s =
      first ? 0.0 : static_cast<double>(p.generated_tokens() - last_tokens_) / seconds;
  last_sample_time_ = now;
  last_trajectories_ = p.trajectories();
  last_tokens_ = p.generated_tokens();
  const double hit_ratio = cache && cache->lookups() > 0
                               ? static_cast<double>(cache->lookup_hits()) / cache->lookups()
                               : 0.0;
  const Evaluation* latest = LatestEvaluation(evals_, eval_kinds_.front().Label());
  progress_->Update(p.training_steps());
  progress_->SetStatus(absl::StrFormat(
      "%s | version %d | %.1f traj/s | %.0f tok/s | held-out pass@1 %s | cache hits %.0f%%",
      p.phase(), p.weight_version(), trajectories_per_s, tokens_per_s,
      latest != nullptr
          ? absl::StrFormat("%.1f%% (step %d)", 100.0 * latest->accuracy(), latest->step)
          : std::string("-"),
      100.0 * hit_ratio));
  Json line = {{"time", absl::FormatTime(absl::RFC3339_full, now, absl::UTCTimeZone())},
               {"elapsed_s", absl::ToDoubleSeconds(now - start_)},
               {"phase", p.phase()},
               {"step", p.training_steps()},
               {"weight_version", p.weight_version()},
               {"trajectories", p.trajectories()},
               {"generated_tokens", p.generated_tokens()},
               {"screening_tokens", p.screening_tokens()},
               {"trained_tokens", p.trained_tokens()},
               {"trajectories_per_s", trajectories_per_s},
               {"tokens_per_s", tokens_per_s},
               {"train_accuracy", p.accuracy()},
               {"hard_left", p.problems_total() - p.problems_done()},
               {"cache_lookup_hit_ratio", hit_ratio}};
  if (latest != nullptr) {
    line["heldout_accuracy"] = latest->accuracy();
    line["heldout_eval"] = latest->kind.Label();
    line["heldout_step"] = latest->step;
  }
  if (cache) {
    line["cache_solutions"] = cache->solutions();
    line["cache_problems"] = cache->problems();
  }
  std::ofstream out(paths_.progress, std::ios::app);
  out << line.dump() << "\n";
}

absl::StatusOr<std::optional<Interrupted>> Run::Train() {
  DS_ASSIGN_OR_RETURN(ProblemSet train, ReadProblemsJsonlFile(paths_.train.string()));
  if (!train.errors.empty())
    return absl::DataLossError(absl::StrCat(paths_.train.string(), ": ", train.ErrorSummary()));
  DS_ASSIGN_OR_RETURN(const v1::Job job,
                      clients_->Submit(v1::JOB_KIND_TRAIN, "deepsearch run", train.problems, 0,
                                       "deepsearch-run/train"));
  train_job_id_ = job.job_id();
  std::cerr << "[run] training job " << train_job_id_ << ": " << train.problems.size()
            << " problems, "
            << (config_.learner.program.algorithm == Algorithm::kGrpo ? "GRPO" : "DeepSearch")
            << ", up to " << config_.learner.program.max_steps
            << " steps; held-out evaluation every " << run_.eval_every << " steps\n";
  ProgressReporter::Options options;
  options.label = "run";
  options.total = config_.learner.program.max_steps;
  options.unit = "step";
  options.interval = run_.status_interval;
  progress_ = std::make_unique<ProgressReporter>(std::move(options));
  absl::Time next_sample = absl::Now();
  // A learner being restarted (CheckChildren) is unreachable for a while.
  absl::Time reached = absl::Now();
  auto transient = [&](const absl::Status& s) {
    return (absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s)) &&
           absl::Now() - reached < run_.startup_timeout;
  };
  while (true) {
    if (std::optional<Interrupted> i = Sleep(absl::Milliseconds(500))) return i;
    DS_RETURN_IF_ERROR(services_.Check());
    absl::StatusOr<v1::Job> job = clients_->GetJob(train_job_id_);
    if (!job.ok()) {
      if (transient(job.status())) continue;
      return job.status();
    }
    reached = absl::Now();
    last_train_ = *std::move(job);
    const bool ended = Terminal(last_train_.state());
    if (ended && last_train_.state() != v1::JOB_STATE_SUCCEEDED) {
      return absl::InternalError(absl::StrCat("the training job ended ",
                                              v1::JobState_Name(last_train_.state()), ": ",
                                              last_train_.error()));
    }
    if (absl::Status s = ScheduleEvaluations(last_train_, ended); !s.ok()) {
      if (transient(s)) continue;
      return s;
    }
    if (absl::Now() >= next_sample) {
      absl::StatusOr<v1::CacheStats> cache = clients_->CacheStats();
      if (cache.ok()) last_cache_ = *cache;
      Sample(last_train_, last_cache_);
      next_sample = absl::Now() + run_.status_interval;
    }
    const bool evaluated =
        !evals_.empty() && evals_.back().step >= last_train_.progress().training_steps() &&
        std::all_of(evals_.begin(), evals_.end(), [](const Evaluation& e) { return e.done; });
    if (ended && evaluated) break;
  }
  Sample(last_train_, last_cache_);
  progress_->Finish();
  return std::nullopt;
}

absl::Status Run::Finish() {
  StopServices();  // the learner's last checkpoint is on disk once it has stopped
  const std::string final_checkpoint = LatestCheckpoint(paths_.state.string());
  if (final_checkpoint.empty()) {
    return absl::InternalError(absl::StrCat("no checkpoint in ", paths_.state.string()));
  }
  DS_RETURN_IF_ERROR(ExportCheckpoint(final_checkpoint, paths_.final_model.string(), "float32"));
  const absl::Status plot =
      PlotEvaluations(evals_, eval_kinds_, paths_.plot, paths_.root / "metrics",
                      absl::StrCat("deepsearch run: ", run_.task, ", ", run_.preset, " model, ",
                                   heldout_.size(), " held-out problems"));
  if (!plot.ok()) log::Warning("run: no plot: {}", plot.message());

  const v1::JobProgress& p = last_train_.progress();
  std::string summary = absl::StrCat("deepsearch run: done in ", Duration(absl::Now() - start_),
                                     " (", paths_.root.string(), ")\n");
  absl::StrAppend(&summary, "  task ", run_.task, ", ", run_.preset, " model, warm start ",
                  run_.sft_steps, " supervised steps\n");
  absl::StrAppend(&summary, "  training: ", p.training_steps(), " steps, ", p.trajectories(),
                  " trajectories, weight version ", p.weight_version(), ", ", p.problems_solved(),
                  "/", p.problems_total(), " training problems solved at least once\n");
  absl::StrAppend(&summary, "  tokens: ", p.generated_tokens(), " generated by the training job (",
                  p.generated_tokens() - p.screening_tokens(), " in training steps, ",
                  p.screening_tokens(), " screening), ", p.trained_tokens(), " trained on\n");
  int64_t eval_tokens = 0;
  for (const Evaluation& e : evals_) eval_tokens += e.eval_tokens;
  for (const EvalKind& kind : eval_kinds_) {
    const Evaluation* first = FirstEvaluation(evals_, kind.Label());
    const Evaluation* last = LatestEvaluation(evals_, kind.Label());
    if (first == nullptr || last == nullptr) continue;
    absl::StrAppend(
        &summary, "  held-out ",
        kind.direct ? absl::StrFormat("direct sampling, T = %.1f", kind.temperature)
                    : std::string("search trees (secondary)"),
        " (", last->problems.size(), " problems, ", kind.samples,
        kind.direct ? " samples" : " leaves", " each): pass@1 ",
        absl::StrFormat("%.1f%%", 100.0 * first->accuracy()), " at step ", first->step, " -> ",
        absl::StrFormat("%.1f%%", 100.0 * last->accuracy()), " at step ", last->step, "; pass@",
        kind.samples, " ",
        absl::StrFormat("%.1f%% -> %.1f%%", 100.0 * first->pass_at_n(), 100.0 * last->pass_at_n()),
        "\n");
  }
  absl::StrAppend(&summary, "  evaluation tokens: ", eval_tokens, " generated by ", evals_.size(),
                  " held-out jobs\n");
  if (last_cache_) {
    absl::StrAppend(&summary, "  cache: ", last_cache_->solutions(), " verified solutions of ",
                    last_cache_->problems(), " problems; ", last_cache_->lookup_hits(), " of ",
                    last_cache_->lookups(), " lookups hit\n");
  }
  absl::StrAppend(&summary, "  final model: ", paths_.final_model.string(), "\n");
  absl::StrAppend(&summary, "  metrics: ", paths_.progress.string(), ", ", paths_.eval.string(),
                  ", ", paths_.eval_pass_at_k.string(), "\n");
  if (plot.ok()) absl::StrAppend(&summary, "  plot: ", paths_.plot.string(), "\n");
  std::cout << summary;
  return WriteFileAtomically(paths_.summary.string(), summary);
}

int Run::Main(bool warm_start_only) {
  auto fail = [this](const absl::Status& s) {
    if (progress_) progress_->Finish();
    std::cerr << "deepsearch run: " << s.message() << "\n";
    StopServices();
    return kExitFailure;
  };
  auto interrupted = [this](const Interrupted& i) {
    if (progress_) progress_->Finish();
    std::cerr << "[run] " << (i.signal == SIGTERM ? "SIGTERM" : "SIGINT")
              << ": stopping the actors, the learner (it checkpoints) and the cache service\n";
    StopServices();
    std::cerr << "[run] stopped; run the same command again to resume from " << paths_.root.string()
              << "\n";
    return kExitInterrupted;
  };
  if (absl::Status s = Prepare(); !s.ok()) return fail(s);
  absl::StatusOr<std::optional<Interrupted>> warm = WarmStart();
  if (!warm.ok()) return fail(warm.status());
  if (*warm) return interrupted(**warm);
  if (warm_start_only) {
    std::cout << "deepsearch run: data in " << paths_.train.parent_path().string()
              << ", warm-started model in " << paths_.sft_model.string() << "\n";
    return kExitOk;
  }
  if (absl::Status s = StartServices(); !s.ok()) return fail(s);
  absl::StatusOr<std::optional<Interrupted>> trained = Train();
  if (!trained.ok()) return fail(trained.status());
  if (*trained) return interrupted(**trained);
  if (absl::Status s = Finish(); !s.ok()) return fail(s);
  return kExitOk;
}

int RunRun(const RunArgs& args) {
  BlockTerminationSignals();  // before any thread starts; children unblock their own
  std::vector<std::string> overrides = args.overrides;
  if (!args.dir.empty()) overrides.push_back("run.dir=" + args.dir);
  if (args.actors > 0) overrides.push_back("run.actors=" + std::to_string(args.actors));
  absl::StatusOr<DeepSearchConfig> config =
      args.config.empty() ? ParseConfigText<DeepSearchConfig>(kRunDefaultsYaml,
                                                              "<embedded run defaults>", overrides)
                          : LoadConfigFile<DeepSearchConfig>(args.config, overrides);
  if (!config.ok()) {
    std::cerr << "deepsearch run: " << config.status().message() << "\n";
    return kExitFailure;
  }
  if (args.print_config) {
    std::cout << DocumentConfig(*config);
    return kExitOk;
  }
  absl::StatusOr<std::string> executable = SelfExecutable();
  if (!executable.ok()) {
    std::cerr << "deepsearch run: " << executable.status().message() << "\n";
    return kExitFailure;
  }
  Run run(*std::move(config), *executable);
  return run.Main(args.warm_start_only);
}

}  // namespace

void AddRunCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand(
      "run",
      "Train end to end on this machine: warm start, then the cache service, the learner and "
      "the actors as processes on 127.0.0.1, DeepSearch training with held-out evaluation");
  cmd->add_option("--dir", args->dir, "Run directory (run.dir); running again resumes it");
  cmd->add_option("--config", args->config,
                  "Config file instead of the embedded default (configs/run.yaml)");
  cmd->add_option("--set", args->overrides, "Override a config key: KEY=VALUE (repeatable)");
  cmd->add_option("--actors", args->actors, "Search actor processes (run.actors)")
      ->check(CLI::Range(1, 64));
  cmd->add_flag("--print-config", args->print_config, "Print the effective configuration and exit");
  cmd->add_flag("--warm-start-only", args->warm_start_only,
                "Write the data sets and the warm-started model, then exit (a later run in the "
                "same directory trains from them)");
  cmd->callback([args, &exit_code] { exit_code = RunRun(*args); });
}

}  // namespace deepsearch::cli
