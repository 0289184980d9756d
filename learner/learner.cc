#include "learner/learner.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "trainer/gradient_reducer.h"
#include "trainer/trainer.h"

#include "common/core/files.h"
#include "common/core/logging.h"
#include "common/core/rng.h"
#include "common/core/status.h"
#include "common/model/model_dir.h"
#include "common/model/weight_export.h"
#include "common/tasks/task.h"
#include "common/tokenizer/tokenizer.h"

namespace deepsearch {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

constexpr char kLatestFile[] = "LATEST";
constexpr char kLearnerStateFile[] = "learner.json";
constexpr int kLearnerStateFormat = 1;
constexpr char kPurposeScreen[] = "screen";
constexpr char kPurposeTrain[] = "train";
constexpr char kPurposeSolve[] = "solve";

std::string CheckpointName(int64_t step) {
  std::string digits = std::to_string(step);
  if (digits.size() < 8) digits.insert(0, 8 - digits.size(), '0');
  return absl::StrCat("step-", digits);
}

std::string CheckpointsDir(const std::string& state_dir) {
  return (fs::path(state_dir) / "checkpoints").string();
}

// The data-parallel command channel (world_size > 1). Rank 0 drives: before every piece of
// collective work it broadcasts a header {command, payload bytes} and then the payload; the
// other ranks wait in ReceiveCommand and do the same work. Commands are whole units, so the
// ranks always agree on which collective comes next:
//   kStart      payload: JSON of rank 0's model config.json and the trainer's vocab_limit;
//               then Trainer::SyncWithRankZero;
//   kStep       payload: the step's batch (EncodeTrainSequences); then Trainer::Step on it;
//   kHeartbeat  nothing: sent while rank 0 is idle so that a waiting rank's collective never
//               reaches the group's timeout;
//   kStop       nothing: the run is over, the other ranks exit.
enum class RankCommand : int64_t { kStart = 1, kStep = 2, kHeartbeat = 3, kStop = 4 };

std::string_view CommandName(RankCommand command) {
  switch (command) {
    case RankCommand::kStart:
      return "start";
    case RankCommand::kStep:
      return "step";
    case RankCommand::kHeartbeat:
      return "heartbeat";
    case RankCommand::kStop:
      return "stop";
  }
  return "unknown";
}

absl::Status SendCommand(GradientReducer& reducer, RankCommand command,
                         const std::string& payload = "") {
  std::vector<at::Tensor> header = {
      at::tensor({static_cast<int64_t>(command), static_cast<int64_t>(payload.size())}, at::kLong)};
  DS_RETURN_IF_ERROR(reducer.Broadcast(header));
  if (payload.empty()) return absl::OkStatus();
  std::vector<at::Tensor> body = {at::from_blob(const_cast<char*>(payload.data()),
                                                {static_cast<int64_t>(payload.size())}, at::kByte)
                                      .clone()};
  return reducer.Broadcast(body);
}

absl::StatusOr<std::pair<RankCommand, std::string>> ReceiveCommand(GradientReducer& reducer) {
  std::vector<at::Tensor> header = {at::zeros({2}, at::kLong)};
  DS_RETURN_IF_ERROR(reducer.Broadcast(header));
  const int64_t command = header[0][0].item<int64_t>(), bytes = header[0][1].item<int64_t>();
  if (command < static_cast<int64_t>(RankCommand::kStart) ||
      command > static_cast<int64_t>(RankCommand::kStop) || bytes < 0) {
    return absl::DataLossError(absl::StrCat("data parallel rank ", reducer.rank(),
                                            ": rank 0 sent an unknown command ", command, " (",
                                            bytes, " bytes)"));
  }
  std::string payload;
  if (bytes > 0) {
    std::vector<at::Tensor> body = {at::zeros({bytes}, at::kByte)};
    DS_RETURN_IF_ERROR(reducer.Broadcast(body));
    payload.assign(reinterpret_cast<const char*>(body[0].data_ptr<uint8_t>()),
                   static_cast<size_t>(bytes));
  }
  return std::make_pair(static_cast<RankCommand>(command), std::move(payload));
}

}  // namespace

std::string LatestCheckpoint(const std::string& state_dir) {
  const fs::path dir(CheckpointsDir(state_dir));
  absl::StatusOr<std::string> latest = ReadFileToString((dir / kLatestFile).string());
  if (!latest.ok()) return "";
  std::string name(*latest);
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  const fs::path path = dir / name;
  if (name.empty() || !fs::is_directory(path)) return "";
  return path.string();
}

absl::Status ExportCheckpoint(const std::string& checkpoint_dir, const std::string& out_dir,
                              const std::string& dtype) {
  const std::string model_dir = (fs::path(checkpoint_dir) / "model").string();
  DS_ASSIGN_OR_RETURN(const Dtype weight_dtype, WeightDtype(dtype));
  DS_ASSIGN_OR_RETURN(LoadedModel loaded, LoadModelDirectory(model_dir, ModelOptions{}));
  DS_ASSIGN_OR_RETURN(const std::string tokenizer_json,
                      ReadFileToString((fs::path(model_dir) / "tokenizer.json").string()));
  // Through a weight set, so that the written config.json names the exported dtype.
  DS_ASSIGN_OR_RETURN(const WeightSet set, ExportWeights(*loaded.model, 0, weight_dtype));
  ModelOptions options;
  DS_ASSIGN_OR_RETURN(options.dtype, TorchDtype(weight_dtype, "weights"));
  DS_ASSIGN_OR_RETURN(std::unique_ptr<Qwen2Model> model, ImportWeights(set, options));
  return SaveModelDirectory(out_dir, *model, tokenizer_json, loaded.generation);
}

// ---------------------------------------------------------------------------------------------

struct Learner::Impl {
  // A training step's collection: its leases until every tree is in.
  struct Collection {
    int64_t step = 0;  // the program's step index
    std::vector<TrainProgram::StepProblem> problems;
    std::set<std::string> outstanding;  // lease ids
    std::vector<CompletedTree> trees;
    int32_t failed = 0;
  };

  // The running TRAIN job.
  struct TrainRun {
    std::string job_id;
    std::map<std::string, Problem> problems;
    JobOptions options;
    std::optional<TrainProgram> program;
    std::optional<Collection> collecting;
    std::optional<Collection> ready;  // all in, not trained yet
    std::set<std::string> screening;  // outstanding screening lease ids
    std::set<std::string> solved;     // problems with a correct trajectory so far
    int64_t trajectories = 0;
    int64_t generated_tokens = 0;  // every token the job's trees sampled, once
    int64_t screening_tokens = 0;  // the part of generated_tokens spent screening
    int64_t trained_tokens = 0;    // response tokens of the trained batches
    double last_accuracy = 0.0;
    // What the token budget counts: the training steps' generated tokens.
    int64_t BudgetTokens() const { return generated_tokens - screening_tokens; }
  };

  struct SolveRun {
    std::map<std::string, Problem> problems;
    std::set<std::string> outstanding;  // lease ids
  };

  LearnerOptions options;
  WeightSink* sink = nullptr;
  GradientReducer* reducer = nullptr;
  std::unique_ptr<JobStore> jobs;
  std::unique_ptr<LeaseManager> leases;

  // Model files that travel with every checkpoint.
  std::string tokenizer_json;
  GenerationConfig generation;

  // The driver's state; Poll holds drive_mu for its whole run.
  absl::Mutex drive_mu;
  std::unique_ptr<Trainer> trainer ABSL_GUARDED_BY(drive_mu);
  std::optional<TrainRun> train ABSL_GUARDED_BY(drive_mu);
  std::map<std::string, SolveRun> solves ABSL_GUARDED_BY(drive_mu);
  // Restored from a checkpoint, applied when the job's run starts.
  std::optional<Json> restored_train ABSL_GUARDED_BY(drive_mu);
  int64_t unpublished_version ABSL_GUARDED_BY(drive_mu) = -1;
  // Whether PublishLocked has asked the sink for its newest version (after a restart ours may
  // be behind it).
  bool sink_numbering_checked ABSL_GUARDED_BY(drive_mu) = false;

  mutable absl::Mutex mu;
  absl::CondVar wake;
  int64_t weight_version ABSL_GUARDED_BY(mu) = 0;
  LearnerStats stats ABSL_GUARDED_BY(mu);
  bool stop ABSL_GUARDED_BY(mu) = false;
  bool changed ABSL_GUARDED_BY(mu) = false;
  std::thread driver;
  bool shut_down = false;
  // Set when the data-parallel group broke: the driver stops, no checkpoint is written (the
  // ranks may be mid-step), and the process should exit (failure()).
  absl::Status failure ABSL_GUARDED_BY(mu);

  // Data parallel: rank 0's commands to the other ranks, one at a time. Lock order:
  // drive_mu, then collective_mu, then mu.
  absl::Mutex collective_mu;
  absl::Time last_command ABSL_GUARDED_BY(collective_mu) = absl::Now();
  bool heartbeat_stop ABSL_GUARDED_BY(mu) = false;
  absl::CondVar heartbeat_wake;
  std::thread heartbeat;

  bool DataParallel() const { return reducer != nullptr && reducer->world_size() > 1; }
  void Fail(const absl::Status& status) {
    absl::MutexLock lock(&mu);
    if (failure.ok()) {
      failure = status;
      log::Error("learner: stopping: {}", status.message());
    }
    stop = true;
    heartbeat_stop = true;
    wake.Signal();
    heartbeat_wake.Signal();
  }
  // Sends `command` to the other ranks (a failure is fatal: Fail).
  absl::Status Command(RankCommand command, const std::string& payload = "")
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(collective_mu) {
    absl::Status status = SendCommand(*reducer, command, payload);
    last_command = absl::Now();
    if (!status.ok()) Fail(status);
    return status;
  }
  void HeartbeatLoop();

  int64_t Version() const {
    absl::MutexLock lock(&mu);
    return weight_version;
  }
  absl::Status failure_status() const {
    absl::MutexLock lock(&mu);
    return failure;
  }
  void Wake() {
    absl::MutexLock lock(&mu);
    changed = true;
    wake.Signal();
  }

  // --- Driver --------------------------------------------------------------------------------

  absl::Status PollLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  absl::Status PublishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  absl::Status StartJobsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  absl::Status StartTrainRunLocked(const Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  void RouteResultsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  absl::Status AdvanceTrainLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  void IssueCollectionLocked(Collection collection) ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  absl::Status TrainReadyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  absl::Status CheckpointLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  void FinishTrainLocked(JobState state, const std::string& error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);
  void UpdateTrainProgressLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(drive_mu);

  LeaseSpec BaseSpec(const std::string& job_id, const JobOptions& job_options,
                     const Problem& problem, LeaseKind kind, int32_t trajectories,
                     std::string_view purpose, int64_t step) const;
  int64_t MinWeightVersion() const;

  void DriverLoop();
};

int64_t Learner::Impl::MinWeightVersion() const {
  if (sink == nullptr) return 0;  // actors keep the weights they have
  const int64_t version = Version();
  if (options.mode == "async") return std::max<int64_t>(0, version + 1 - options.max_policy_lag);
  return version;
}

LeaseSpec Learner::Impl::BaseSpec(const std::string& job_id, const JobOptions& job_options,
                                  const Problem& problem, LeaseKind kind, int32_t trajectories,
                                  std::string_view purpose, int64_t step) const {
  LeaseSpec spec;
  spec.job_id = job_id;
  spec.kind = kind;
  spec.problem = problem;
  spec.num_trajectories = trajectories;
  spec.search = job_options.search.value_or(options.search);
  const SamplingConfig sampling = job_options.sampling.value_or(options.sampling);
  // The seed is a function of what is sampled, not of the order leases are issued in.
  spec.sampling = sampling.ToParams(DeriveSeed(
      options.seed, absl::StrCat(job_id, "/", std::string(purpose), "/", step, "/", problem.id)));
  spec.min_weight_version = MinWeightVersion();
  spec.purpose = std::string(purpose);
  spec.step = step;
  return spec;
}

absl::Status Learner::Impl::PublishLocked() {
  if (unpublished_version < 0) return absl::OkStatus();
  if (sink == nullptr || (reducer != nullptr && reducer->rank() != 0)) {
    unpublished_version = -1;
    return absl::OkStatus();
  }
  DS_ASSIGN_OR_RETURN(const Dtype dtype, WeightDtype(options.publish_dtype));
  // Numbers these weights `version`: the learner's version from now on.
  auto renumber = [&](int64_t version, int64_t newest) {
    log::Warning(
        "learner: the cache service holds weight version {} (published before a restart from "
        "an older checkpoint); these weights become version {} so that versions stay unique "
        "and actors take them",
        newest, version);
    absl::MutexLock lock(&mu);
    weight_version = version;
    stats.weight_version = version;
    unpublished_version = version;
  };
  DS_ASSIGN_OR_RETURN(WeightSet set, ExportWeights(trainer->model(), unpublished_version, dtype));
  absl::Status status = absl::OkStatus();
  for (int attempt = 1; attempt <= options.publish_attempts; ++attempt) {
    // Once per process: only a learner that restarted can be behind the cache's numbering
    // (later, a version taken by other weights shows as FAILED_PRECONDITION below).
    absl::StatusOr<int64_t> newest = int64_t{0};
    if (!sink_numbering_checked) newest = sink->LatestVersion();
    status = newest.status();
    if (newest.ok()) {
      sink_numbering_checked = true;
      if (*newest > set.version) {
        renumber(*newest + 1, *newest);
        set.version = *newest + 1;
      }
      status = sink->Publish(set);
      if (absl::IsFailedPrecondition(status)) {
        // The version is taken by other weights (a crash lost the steps that made them).
        newest = sink->LatestVersion();
        if (newest.ok() && *newest >= set.version) {
          renumber(*newest + 1, *newest);
          set.version = *newest + 1;
          status = sink->Publish(set);
        }
      }
    }
    if (status.ok() || absl::IsAlreadyExists(status)) {
      unpublished_version = -1;
      absl::MutexLock lock(&mu);
      stats.unpublished_version = 0;
      stats.waiting_for.clear();
      return absl::OkStatus();
    }
    log::Warning("learner: publishing weight version {} failed (attempt {} of {}): {}", set.version,
                 attempt, options.publish_attempts, status.message());
    absl::SleepFor(absl::Milliseconds(100) * attempt);
  }
  {
    absl::MutexLock lock(&mu);
    stats.unpublished_version = set.version;
    stats.waiting_for =
        absl::StrCat("publishing weight version ", set.version, ": ", status.message());
  }
  return absl::UnavailableError(absl::StrCat("cannot publish weight version ", set.version,
                                             " (no training lease is issued until it is out; "
                                             "retrying): ",
                                             status.message()));
}

absl::Status Learner::Impl::StartJobsLocked() {
  // Runs of jobs that ended elsewhere (cancelled) stop; their leases were dropped by Cancel.
  auto ended = [&](const std::string& job_id) {
    absl::StatusOr<Job> job = jobs->Get(job_id);
    return !job.ok() || IsTerminal(job->state);
  };
  if (train.has_value() && ended(train->job_id)) train.reset();
  for (auto it = solves.begin(); it != solves.end();) {
    it = ended(it->first) ? solves.erase(it) : std::next(it);
  }
  for (const Job& job : jobs->Active()) {
    if (job.kind == JobKind::kSolve) {
      if (solves.count(job.id) > 0) continue;
      DS_ASSIGN_OR_RETURN(std::vector<Problem> problems, jobs->Problems(job.id));
      std::set<std::string> done;
      for (const ProblemResult& r : job.results) done.insert(r.problem_id);
      SolveRun run;
      const int32_t samples = job.options.samples_per_problem > 0 ? job.options.samples_per_problem
                                                                  : options.solve_samples;
      for (Problem& p : problems) {
        if (done.count(p.id) > 0) continue;
        const LeaseKind kind = job.options.solve_mode == JobOptions::SolveMode::kRollout
                                   ? LeaseKind::kRollout
                                   : LeaseKind::kSolve;
        LeaseSpec spec = BaseSpec(job.id, job.options, p, kind, samples, kPurposeSolve, 0);
        spec.min_weight_version = 0;  // any weights answer a SOLVE job
        run.outstanding.insert(leases->Add(std::move(spec)));
        run.problems.emplace(p.id, std::move(p));
      }
      DS_RETURN_IF_ERROR(jobs->Update(job.id,
                                      [&](Job& j) {
                                        j.state = JobState::kRunning;
                                        j.progress.problems_total =
                                            static_cast<int32_t>(run.problems.size() + done.size());
                                        j.progress.phase = "solving";
                                      })
                             .status());
      solves.emplace(job.id, std::move(run));
    } else if (!train.has_value()) {
      DS_RETURN_IF_ERROR(StartTrainRunLocked(job));
    }
  }
  return absl::OkStatus();
}

absl::Status Learner::Impl::StartTrainRunLocked(const Job& job) {
  DS_ASSIGN_OR_RETURN(std::vector<Problem> problems, jobs->Problems(job.id));
  TrainRun run;
  run.job_id = job.id;
  run.options = job.options;
  std::vector<std::string> ids;
  for (Problem& p : problems) {
    ids.push_back(p.id);
    run.problems.emplace(p.id, std::move(p));
  }
  if (restored_train.has_value() && restored_train->value("job_id", std::string()) == job.id) {
    const Json r = *restored_train;
    restored_train.reset();
    try {
      DS_ASSIGN_OR_RETURN(TrainProgram program,
                          TrainProgram::FromJson(r.at("program").get<std::string>(), job.id));
      program.ReleaseScreening();
      run.program = std::move(program);
      for (const Json& id : r.at("solved")) run.solved.insert(id.get<std::string>());
      run.trajectories = r.at("trajectories").get<int64_t>();
      run.generated_tokens = r.at("generated_tokens").get<int64_t>();
      run.screening_tokens = r.value("screening_tokens", int64_t{0});
      run.trained_tokens = r.value("trained_tokens", int64_t{0});
      run.last_accuracy = r.at("last_accuracy").get<double>();
      if (r.contains("collecting")) {
        Collection c;
        c.step = r.at("collecting").at("step").get<int64_t>();
        for (const Json& p : r.at("collecting").at("problems")) {
          c.problems.push_back(TrainProgram::StepProblem{p.at("id").get<std::string>(),
                                                         p.at("use_cache").get<bool>()});
        }
        run.collecting = std::move(c);
      }
      if (run.program->step_in_flight() && !run.collecting.has_value()) {
        // Written by a learner that lost a step between its leases and its training (before
        // the step was marked done): the step's trees are gone, the next step starts afresh.
        log::Warning(
            "learner: job {}: step {} was in flight with no leases to re-issue; it is "
            "skipped",
            job.id, run.program->step());
        run.program->ReleaseStep();
      }
    } catch (const Json::exception& e) {
      return absl::DataLossError(
          absl::StrCat("checkpoint state of job ", job.id, " does not parse: ", e.what()));
    }
  } else {
    TrainProgramConfig config = options.program;
    if (!job.options.algorithm.empty()) config.algorithm = job.options.algorithm;
    if (job.options.max_steps > 0) config.max_steps = job.options.max_steps;
    absl::StatusOr<TrainProgram> program = TrainProgram::Create(job.id, ids, config);
    if (!program.ok()) {
      (void)jobs->Update(job.id, [&](Job& j) {
        j.state = JobState::kFailed;
        j.error = std::string(program.status().message());
      });
      return absl::OkStatus();
    }
    run.program = std::move(*program);
  }
  DS_RETURN_IF_ERROR(jobs->Update(job.id,
                                  [&](Job& j) {
                                    j.state = JobState::kRunning;
                                    j.progress.problems_total =
                                        static_cast<int32_t>(run.problems.size());
                                  })
                         .status());
  train = std::move(run);
  if (train->collecting.has_value()) {  // a restored step in flight: lease it again
    Collection c = std::move(*train->collecting);
    train->collecting.reset();
    IssueCollectionLocked(std::move(c));
  }
  log::Info("learner: training job {} ({} problems, {})", job.id, train->problems.size(),
            train->program->config().algorithm);
  return absl::OkStatus();
}

void Learner::Impl::IssueCollectionLocked(Collection collection) {
  TrainRun& run = *train;
  const TrainProgram& program = *run.program;
  collection.outstanding.clear();
  collection.trees.clear();
  for (const TrainProgram::StepProblem& sp : collection.problems) {
    const Problem& problem = run.problems.at(sp.problem_id);
    LeaseSpec spec = BaseSpec(run.job_id, run.options, problem, program.training_kind(),
                              program.config().trajectories, kPurposeTrain, collection.step);
    spec.use_solution_cache = sp.use_solution_cache;
    collection.outstanding.insert(leases->Add(std::move(spec)));
  }
  run.collecting = std::move(collection);
}

void Learner::Impl::RouteResultsLocked() {
  for (CompletedTree& tree : leases->TakeCompleted()) {
    const std::string& job_id = tree.spec.job_id;
    const std::string& purpose = tree.spec.purpose;
    if (purpose == kPurposeSolve) {
      auto it = solves.find(job_id);
      if (it == solves.end() || it->second.outstanding.erase(tree.lease_id) == 0) continue;
      std::vector<SampleVerdict> verdicts;
      for (const TrajectoryRecord& r : tree.trajectories)
        verdicts.push_back({r.predicted, r.correct, r.incomplete});
      ProblemResult result{tree.spec.problem.id,
                           SelectAnswer(!tree.spec.problem.answer.empty(), verdicts)};
      int64_t tokens = 0;
      for (const TrajectoryRecord& r : tree.trajectories) tokens += r.tree_generated_tokens;
      (void)jobs->Update(job_id, [&](Job& j) {
        ++j.progress.problems_done;
        if (result.summary.correct) ++j.progress.problems_solved;
        j.progress.trajectories += static_cast<int64_t>(tree.trajectories.size());
        j.progress.generated_tokens += tokens;
        j.progress.weight_version = Version();
        j.progress.accuracy =
            j.progress.problems_total > 0
                ? static_cast<double>(j.progress.problems_solved) / j.progress.problems_total
                : 0.0;
        j.results.push_back(result);
      });
      continue;
    }
    if (!train.has_value() || train->job_id != job_id) continue;  // a cancelled job's leftovers
    TrainRun& run = *train;
    for (const TrajectoryRecord& r : tree.trajectories) {
      if (r.correct) run.solved.insert(tree.spec.problem.id);
      ++run.trajectories;
      run.generated_tokens += r.tree_generated_tokens;
      if (purpose == kPurposeScreen) run.screening_tokens += r.tree_generated_tokens;
    }
    if (purpose == kPurposeScreen) {
      if (run.screening.erase(tree.lease_id) == 0) continue;
      int32_t correct = 0;
      for (const TrajectoryRecord& r : tree.trajectories) correct += r.correct ? 1 : 0;
      run.program->OnScreened(tree.spec.problem.id, static_cast<int32_t>(tree.trajectories.size()),
                              correct);
    } else if (purpose == kPurposeTrain && run.collecting.has_value() &&
               run.collecting->outstanding.erase(tree.lease_id) > 0) {
      run.collecting->trees.push_back(std::move(tree));
    }
  }
  for (FailedLease& failed : leases->TakeFailed()) {
    const std::string& job_id = failed.spec.job_id;
    log::Warning("learner: lease {} of job {} failed for good: {}", failed.lease_id, job_id,
                 failed.reason);
    if (failed.spec.purpose == kPurposeSolve) {
      auto it = solves.find(job_id);
      if (it == solves.end() || it->second.outstanding.erase(failed.lease_id) == 0) continue;
      ProblemResult result;
      result.problem_id = failed.spec.problem.id;
      result.summary.selection = "none";
      (void)jobs->Update(job_id, [&](Job& j) {
        ++j.progress.problems_done;
        j.results.push_back(result);
      });
      continue;
    }
    if (!train.has_value() || train->job_id != job_id) continue;
    TrainRun& run = *train;
    if (failed.spec.purpose == kPurposeScreen) {
      if (run.screening.erase(failed.lease_id) > 0)
        run.program->OnScreeningFailed(failed.spec.problem.id);
    } else if (run.collecting.has_value() &&
               run.collecting->outstanding.erase(failed.lease_id) > 0) {
      ++run.collecting->failed;  // the step trains without this tree
    }
  }
  // Finished solve jobs.
  for (auto it = solves.begin(); it != solves.end();) {
    if (!it->second.outstanding.empty()) {
      ++it;
      continue;
    }
    (void)jobs->Update(it->first, [](Job& j) {
      if (!IsTerminal(j.state)) j.state = JobState::kSucceeded;
      j.progress.phase = "done";
    });
    it = solves.erase(it);
  }
}

void Learner::Impl::UpdateTrainProgressLocked() {
  TrainRun& run = *train;
  const TrainProgram& program = *run.program;
  const int64_t version = Version();
  const int64_t steps = trainer->step();
  std::string phase;
  switch (program.phase()) {
    case TrainProgram::Phase::kScreening:
      phase = absl::StrCat("round ", program.round(), ": screening");
      break;
    case TrainProgram::Phase::kTraining:
      phase = absl::StrCat("round ", program.round(), ": training");
      break;
    case TrainProgram::Phase::kDone:
      phase = "done";
      break;
  }
  {
    absl::MutexLock lock(&mu);
    if (!stats.waiting_for.empty()) absl::StrAppend(&phase, " (waiting: ", stats.waiting_for, ")");
  }
  const int32_t total = static_cast<int32_t>(run.problems.size());
  const int32_t hard = static_cast<int32_t>(program.hard_subset().size());
  (void)jobs->Update(run.job_id, [&](Job& j) {
    j.progress.problems_total = total;
    j.progress.problems_done =
        program.rounds().empty() || program.phase() == TrainProgram::Phase::kScreening
            ? j.progress.problems_done
            : total - hard;
    j.progress.problems_solved = static_cast<int32_t>(run.solved.size());
    j.progress.trajectories = run.trajectories;
    j.progress.generated_tokens = run.generated_tokens;
    j.progress.screening_tokens = run.screening_tokens;
    j.progress.trained_tokens = run.trained_tokens;
    j.progress.training_steps = steps;
    j.progress.weight_version = version;
    j.progress.accuracy = run.last_accuracy;
    j.progress.phase = phase;
  });
}

absl::Status Learner::Impl::AdvanceTrainLocked() {
  if (!train.has_value()) return absl::OkStatus();
  TrainRun& run = *train;
  TrainProgram& program = *run.program;
  const bool async = options.mode == "async";

  // A collection that is complete moves to `ready`.
  if (run.collecting.has_value() && run.collecting->outstanding.empty() && !run.ready) {
    Collection c = std::move(*run.collecting);
    run.collecting.reset();
    for (const CompletedTree& tree : c.trees) {
      int32_t fresh = 0, correct = 0;
      for (const TrajectoryRecord& r : tree.trajectories) {
        if (r.from_cache) continue;
        ++fresh;
        correct += r.correct ? 1 : 0;
      }
      program.OnTrainingTree(tree.spec.problem.id, fresh, correct);
    }
    run.ready = std::move(c);
    // async: the program moves on now, so the next step's leases go out while training.
    if (async) program.StepDone(run.BudgetTokens());
  }
  if (async && !run.collecting.has_value() && program.phase() == TrainProgram::Phase::kTraining) {
    std::vector<TrainProgram::StepProblem> next = program.NextStep();
    if (!next.empty())
      IssueCollectionLocked(Collection{program.step(), std::move(next), {}, {}, 0});
  }

  if (run.ready.has_value()) {
    const int64_t step = run.ready->step;
    // The step is done whatever happens to its batch: its trees are spent (TrainReadyLocked
    // takes them), so the program must move on or no lease would ever be issued again.
    const absl::Status trained = TrainReadyLocked();
    if (!trained.ok()) {
      if (!failure_status().ok()) return trained;  // the data-parallel group broke
      if (!absl::IsInvalidArgument(trained)) {
        log::Error("learner: training step {} of job {} failed: {}", step, run.job_id,
                   trained.message());
        UpdateTrainProgressLocked();
        FinishTrainLocked(JobState::kFailed,
                          absl::StrCat("training step ", step, " failed: ", trained.message()));
        return absl::OkStatus();
      }
      log::Warning("learner: step {} of job {} is skipped: its batch was refused: {}", step,
                   run.job_id, trained.message());
    }
    if (!async) program.StepDone(run.BudgetTokens());
    UpdateTrainProgressLocked();
    const int64_t steps = trainer->step();
    if (options.checkpoint_every > 0 && steps % options.checkpoint_every == 0)
      DS_RETURN_IF_ERROR(CheckpointLocked());
    // A version that cannot be published yet holds the next step back; PollLocked retries it.
    if (absl::Status published = PublishLocked(); !published.ok()) {
      UpdateTrainProgressLocked();  // the job's phase says what it waits for
      return published;
    }
  }

  switch (program.phase()) {
    case TrainProgram::Phase::kScreening: {
      std::vector<std::string> ids = program.TakeScreening();
      for (const std::string& id : ids) {
        LeaseSpec spec = BaseSpec(run.job_id, run.options, run.problems.at(id), LeaseKind::kRollout,
                                  program.config().screen_samples, kPurposeScreen, program.round());
        run.screening.insert(leases->Add(std::move(spec)));
      }
      if (!ids.empty()) UpdateTrainProgressLocked();
      break;
    }
    case TrainProgram::Phase::kTraining:
      if (!async && !run.collecting.has_value() && !run.ready.has_value()) {
        std::vector<TrainProgram::StepProblem> next = program.NextStep();
        if (!next.empty())
          IssueCollectionLocked(Collection{program.step(), std::move(next), {}, {}, 0});
        UpdateTrainProgressLocked();
      }
      break;
    case TrainProgram::Phase::kDone:
      if (!run.collecting.has_value() && !run.ready.has_value()) {
        UpdateTrainProgressLocked();
        FinishTrainLocked(JobState::kSucceeded, "");
      }
      break;
  }
  return absl::OkStatus();
}

void Learner::Impl::HeartbeatLoop() {
  const absl::Duration interval = std::min(absl::Seconds(30), options.data_parallel.timeout / 4);
  while (true) {
    {
      absl::MutexLock lock(&mu);
      if (!heartbeat_stop) heartbeat_wake.WaitWithTimeout(&mu, interval / 4);
      if (heartbeat_stop) return;
    }
    absl::MutexLock lock(&collective_mu);
    if (absl::Now() - last_command < interval) continue;
    if (!Command(RankCommand::kHeartbeat).ok()) return;
  }
}

absl::Status Learner::Impl::TrainReadyLocked() {
  TrainRun& run = *train;
  Collection c = std::move(*run.ready);
  run.ready.reset();
  const int64_t version = Version();
  std::vector<TrainSequence> batch;
  std::vector<bool> verdicts;  // batch[i] verified correct
  int64_t stale = 0, fresh = 0, correct = 0;
  for (CompletedTree& tree : c.trees) {
    int64_t oldest = version;
    for (const TrajectoryRecord& r : tree.trajectories) {
      if (!r.from_cache) oldest = std::min(oldest, r.sequence.weight_version);
    }
    if (options.mode == "async" && version - oldest > options.max_policy_lag) {
      ++stale;
      continue;
    }
    for (TrajectoryRecord& r : tree.trajectories) {
      if (!r.from_cache) {
        ++fresh;
        correct += r.correct ? 1 : 0;
      }
      verdicts.push_back(r.correct);
      batch.push_back(std::move(r.sequence));
    }
  }
  run.last_accuracy = fresh > 0 ? static_cast<double>(correct) / static_cast<double>(fresh) : 0.0;
  {
    absl::MutexLock lock(&mu);
    stats.stale_trees += stale;
  }
  if (batch.empty()) {
    log::Warning("learner: step {} of job {} has no trainable trees ({} failed, {} stale)", c.step,
                 run.job_id, c.failed, stale);
    return absl::OkStatus();
  }
  std::pair<size_t, size_t> longest = {0, 0};  // prompt, response tokens
  int64_t batch_tokens = 0;
  for (const TrainSequence& seq : batch) {
    if (seq.prompt_tokens.size() + seq.response_tokens.size() > longest.first + longest.second)
      longest = {seq.prompt_tokens.size(), seq.response_tokens.size()};
    batch_tokens += static_cast<int64_t>(seq.response_tokens.size());
  }
  const GroupSummary groups =
      SummarizeGroups(batch, verdicts, ComputeAdvantages(batch, options.train.advantage_norm));
  absl::StatusOr<TrainStepStats> stepped;
  if (DataParallel()) {
    // Every rank trains its share of the same batch (PlanStep). A malformed batch fails the
    // same validation on every rank before any collective; anything else leaves the ranks
    // out of step, which is fatal.
    absl::MutexLock lock(&collective_mu);
    DS_RETURN_IF_ERROR(Command(RankCommand::kStep, EncodeTrainSequences(batch)));
    stepped = trainer->Step(batch);
    last_command = absl::Now();
    if (!stepped.ok() && !absl::IsInvalidArgument(stepped.status())) Fail(stepped.status());
  } else {
    stepped = trainer->Step(batch);
  }
  DS_ASSIGN_OR_RETURN(const TrainStepStats s, std::move(stepped));
  run.trained_tokens += batch_tokens;
  int64_t new_version = 0;
  {
    absl::MutexLock lock(&mu);
    new_version = ++weight_version;
    stats.weight_version = new_version;
    stats.training_steps = trainer->step();
    stats.all_wrong_group_share = groups.AllWrongShare();
    stats.all_wrong_mean_advantage = groups.all_wrong_mean_advantage;
  }
  log::Info(
      "learner: step {} (job {}, version {}): {} trees, {} sequences, {} tokens (longest "
      "sequence {} + {}), loss {:.4f}, grad norm {:.3f}, lr {:.2e}, accuracy {:.3f}, all-wrong "
      "groups {} of {} (mean advantage {:.4f}), {:.1f} s",
      s.step, run.job_id, new_version, c.trees.size() - static_cast<size_t>(stale), s.sequences,
      s.tokens, longest.first, longest.second, s.loss, s.grad_norm, s.lr, run.last_accuracy,
      groups.all_wrong_groups, groups.groups, groups.all_wrong_mean_advantage, s.seconds);
  unpublished_version = new_version;  // published by AdvanceTrainLocked once the step is done
  return absl::OkStatus();
}

void Learner::Impl::FinishTrainLocked(JobState state, const std::string& error) {
  const std::string job_id = train->job_id;
  absl::Status checkpoint = CheckpointLocked();
  if (!checkpoint.ok()) log::Error("learner: checkpoint failed: {}", checkpoint.message());
  (void)jobs->Update(job_id, [&](Job& j) {
    if (!IsTerminal(j.state)) j.state = state;
    j.error = error;
  });
  log::Info("learner: job {} finished: {}", job_id, JobStateName(state));
  train.reset();
}

absl::Status Learner::Impl::CheckpointLocked() {
  const int64_t steps = trainer->step();
  const fs::path root(CheckpointsDir(options.state_dir));
  const fs::path target = root / CheckpointName(steps);
  const fs::path temp = root / absl::StrCat(".", CheckpointName(steps), ".tmp");
  std::error_code error;
  fs::remove_all(temp, error);
  fs::create_directories(temp, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create ", temp.string(), ": ", error.message()));
  }
  const fs::path model_dir = temp / "model";
  DS_RETURN_IF_ERROR(trainer->Save(model_dir.string()));
  DS_RETURN_IF_ERROR(WriteFileAtomically((model_dir / "config.json").string(),
                                         trainer->model().config().ToJson()));
  DS_RETURN_IF_ERROR(
      WriteFileAtomically((model_dir / "generation_config.json").string(), generation.ToJson()));
  DS_RETURN_IF_ERROR(WriteFileAtomically((model_dir / "tokenizer.json").string(), tokenizer_json));

  Json state;
  state["format"] = kLearnerStateFormat;
  state["weight_version"] = Version();
  state["training_steps"] = steps;
  if (train.has_value()) {
    const TrainRun& run = *train;
    Json t;
    t["job_id"] = run.job_id;
    t["program"] = run.program->ToJson();
    t["solved"] = std::vector<std::string>(run.solved.begin(), run.solved.end());
    t["trajectories"] = run.trajectories;
    t["generated_tokens"] = run.generated_tokens;
    t["screening_tokens"] = run.screening_tokens;
    t["trained_tokens"] = run.trained_tokens;
    t["last_accuracy"] = run.last_accuracy;
    if (run.collecting.has_value()) {
      Json problems = Json::array();
      for (const TrainProgram::StepProblem& p : run.collecting->problems)
        problems.push_back({{"id", p.problem_id}, {"use_cache", p.use_solution_cache}});
      t["collecting"] = {{"step", run.collecting->step}, {"problems", problems}};
    }
    state["train"] = t;
  }
  DS_RETURN_IF_ERROR(
      WriteFileAtomically((temp / kLearnerStateFile).string(), state.dump(2) + "\n"));
  DS_RETURN_IF_ERROR(ReplaceDirectory(temp.string(), target.string()));
  DS_RETURN_IF_ERROR(
      WriteFileAtomically((root / kLatestFile).string(), target.filename().string() + "\n"));
  {
    absl::MutexLock lock(&mu);
    ++stats.checkpoints;
  }
  // Keep the newest keep_checkpoints.
  std::vector<std::string> names;
  for (const fs::directory_entry& e : fs::directory_iterator(root, error)) {
    const std::string name = e.path().filename().string();
    if (e.is_directory() && name.rfind("step-", 0) == 0) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  const size_t keep = static_cast<size_t>(std::max(1, options.keep_checkpoints));
  for (size_t i = 0; i + keep < names.size(); ++i) {
    if (names[i] == target.filename().string()) continue;
    fs::remove_all(root / names[i], error);
  }
  log::Info("learner: checkpoint {} (version {})", target.string(), Version());
  return absl::OkStatus();
}

absl::Status Learner::Impl::PollLocked() {
  // A version that could not be published holds everything back: actors in sync mode would
  // wait for it forever.
  if (absl::Status published = PublishLocked(); !published.ok()) {
    if (train.has_value()) UpdateTrainProgressLocked();  // the job's phase says what it waits for
    return published;
  }
  DS_RETURN_IF_ERROR(StartJobsLocked());
  RouteResultsLocked();
  DS_RETURN_IF_ERROR(AdvanceTrainLocked());
  {
    absl::MutexLock lock(&mu);
    stats.leases = leases->counts();
  }
  return absl::OkStatus();
}

void Learner::Impl::DriverLoop() {
  absl::Time last_error = absl::InfinitePast();
  while (true) {
    {
      absl::MutexLock lock(&mu);
      if (!changed && !stop) wake.WaitWithTimeout(&mu, absl::Milliseconds(100));
      if (stop) return;
      changed = false;
    }
    absl::Status status;
    {
      absl::MutexLock lock(&drive_mu);
      status = PollLocked();
    }
    if (!status.ok() && absl::Now() - last_error > absl::Seconds(10)) {
      log::Error("learner: {}", status.message());
      last_error = absl::Now();
    }
  }
}

// ---------------------------------------------------------------------------------------------

Learner::Learner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Learner::~Learner() {
  if (!impl_->shut_down) {
    absl::Status s = Shutdown();
    if (!s.ok()) log::Error("learner: shutdown: {}", s.message());
  }
}

absl::StatusOr<std::unique_ptr<Learner>> Learner::Create(LearnerOptions options, WeightSink* sink,
                                                         GradientReducer* reducer) {
  if (reducer != nullptr && reducer->rank() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Learner::Create on data parallel rank ", reducer->rank(),
                     ": only rank 0 runs the learner; the other ranks run RunTrainingWorker"));
  }
  auto impl = std::make_unique<Impl>();
  impl->sink = sink;
  impl->reducer = reducer;
  std::error_code error;
  fs::create_directories(CheckpointsDir(options.state_dir), error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot create the state directory ", options.state_dir,
                                            ": ", error.message()));
  }
  DS_ASSIGN_OR_RETURN(impl->jobs, JobStore::Open((fs::path(options.state_dir) / "jobs").string()));
  for (const std::string& e : impl->jobs->load_errors()) log::Warning("learner: {}", e);
  impl->leases = std::make_unique<LeaseManager>(LeaseManagerOptions{
      .lease_duration = options.lease_duration, .max_attempts = options.max_attempts});

  const std::string checkpoint = LatestCheckpoint(options.state_dir);
  const std::string model_dir =
      checkpoint.empty() ? options.model : (fs::path(checkpoint) / "model").string();
  if (model_dir.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no checkpoint in ", options.state_dir,
                                                   " and no model directory (learner.model)"));
  }
  DS_ASSIGN_OR_RETURN(LoadedModel loaded, LoadModelDirectory(model_dir, ModelOptions{}));
  DS_ASSIGN_OR_RETURN(impl->tokenizer_json,
                      ReadFileToString((fs::path(model_dir) / "tokenizer.json").string()));
  impl->generation = loaded.generation;
  TrainerConfig train_config = options.train;
  train_config.decoupled = options.mode == "async";
  train_config.reducer = reducer;
  if (train_config.vocab_limit == 0) {
    // Log-probs over the ids the actors sample from: the tokenizer's (a model's embedding
    // often has spare rows).
    DS_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                        ParseTokenizerJson(impl->tokenizer_json, model_dir + "/tokenizer.json"));
    train_config.vocab_limit = tokenizer->vocab_size();
  }
  DS_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer,
                      Trainer::Create(std::move(loaded.model), train_config));
  int64_t version = 1;  // the initial weights
  if (!checkpoint.empty()) {
    DS_RETURN_IF_ERROR(trainer->Load(model_dir));
    DS_ASSIGN_OR_RETURN(const std::string text,
                        ReadFileToString((fs::path(checkpoint) / kLearnerStateFile).string()));
    Json state = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    const std::string where = (fs::path(checkpoint) / kLearnerStateFile).string();
    if (state.is_discarded() || !state.is_object() || !state.contains("weight_version")) {
      return absl::DataLossError(absl::StrCat(where, ": not a learner state"));
    }
    try {
      if (state.at("format").get<int>() != kLearnerStateFormat)
        return absl::DataLossError(absl::StrCat(where, ": unknown format"));
      version = state.at("weight_version").get<int64_t>();
      if (state.contains("train")) {
        absl::MutexLock lock(&impl->drive_mu);
        impl->restored_train = state.at("train");
      }
    } catch (const Json::exception& e) {
      return absl::DataLossError(absl::StrCat(where, ": ", e.what()));
    }
    log::Info("learner: resumed from {} (step {}, weight version {})", checkpoint, trainer->step(),
              version);
  }
  if (impl->DataParallel()) {
    // The other ranks build the same model and take this rank's state.
    absl::MutexLock lock(&impl->collective_mu);
    const Json start = {{"model_config", trainer->model().config().ToJson()},
                        {"vocab_limit", trainer->config().vocab_limit}};
    DS_RETURN_IF_ERROR(SendCommand(*reducer, RankCommand::kStart, start.dump()));
    DS_RETURN_IF_ERROR(trainer->SyncWithRankZero());
    impl->last_command = absl::Now();
    log::Info("learner: data parallel over {} ranks: rank 0 serves, every rank trains",
              reducer->world_size());
  }
  {
    absl::MutexLock lock(&impl->mu);
    impl->weight_version = version;
    impl->stats.weight_version = version;
    impl->stats.training_steps = trainer->step();
  }
  impl->options = std::move(options);
  {
    absl::MutexLock lock(&impl->drive_mu);
    impl->trainer = std::move(trainer);
    impl->unpublished_version = version;
    // The cache service may come up after the learner: the driver keeps trying (PollLocked),
    // and nothing is leased before the version is out.
    if (absl::Status s = impl->PublishLocked(); !s.ok())
      log::Warning("learner: {}; retrying until the cache service takes it", s.message());
  }
  if (impl->DataParallel()) {
    Impl* raw = impl.get();
    impl->heartbeat = std::thread([raw] { raw->HeartbeatLoop(); });
  }
  return std::unique_ptr<Learner>(new Learner(std::move(impl)));
}

void Learner::Start() {
  if (impl_->driver.joinable()) return;
  impl_->driver = std::thread([this] { impl_->DriverLoop(); });
}

absl::Status Learner::Shutdown() {
  if (impl_->shut_down) return absl::OkStatus();
  impl_->shut_down = true;
  {
    absl::MutexLock lock(&impl_->mu);
    impl_->stop = true;
    impl_->wake.Signal();
  }
  if (impl_->driver.joinable()) impl_->driver.join();
  {
    absl::MutexLock lock(&impl_->mu);
    impl_->heartbeat_stop = true;
    impl_->heartbeat_wake.Signal();
  }
  if (impl_->heartbeat.joinable()) impl_->heartbeat.join();
  const absl::Status failure = this->failure();
  if (!failure.ok()) return failure;  // the ranks may be mid-step: keep the last checkpoint
  absl::MutexLock lock(&impl_->drive_mu);
  absl::Status status = absl::OkStatus();
  if (impl_->train.has_value()) status = impl_->CheckpointLocked();
  if (impl_->DataParallel()) {
    absl::MutexLock collective(&impl_->collective_mu);
    absl::Status stopped = impl_->Command(RankCommand::kStop);
    if (status.ok()) status = stopped;
  }
  return status;
}

absl::Status Learner::failure() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->failure;
}

LeaseWorkResult Learner::LeaseWork(const std::string& actor_id, int32_t max_leases,
                                   absl::Time now) {
  LeaseWorkResult result;
  result.leases = impl_->leases->Issue(actor_id, std::max(0, max_leases), now);
  result.latest_weight_version = impl_->Version();
  result.retry_after = impl_->options.retry_after;
  return result;
}

std::vector<LeaseRenewal> Learner::Renew(const std::string& actor_id,
                                         const std::vector<std::string>& lease_ids,
                                         absl::Time now) {
  return impl_->leases->Renew(actor_id, lease_ids, now);
}

std::vector<IngestResult> Learner::Ingest(IngestRequest request) {
  std::vector<int64_t> tokens;
  tokens.reserve(request.trajectories.size());
  for (const TrajectoryRecord& r : request.trajectories) {
    tokens.push_back(r.tree_generated_tokens);
  }
  std::vector<IngestResult> results = impl_->leases->Ingest(std::move(request.trajectories));
  for (const std::string& id : request.completed_lease_ids)
    impl_->leases->Complete(request.actor_id, id);
  for (const auto& [id, reason] : request.failed_leases)
    impl_->leases->Fail(request.actor_id, id, reason);
  {
    absl::MutexLock lock(&impl_->mu);
    for (size_t i = 0; i < results.size(); ++i) {
      switch (results[i].outcome) {
        case IngestOutcome::kAccepted:
          ++impl_->stats.trajectories;
          impl_->stats.generated_tokens += tokens[i];
          break;
        case IngestOutcome::kDuplicate:
          ++impl_->stats.duplicates;
          break;
        case IngestOutcome::kRejected:
          ++impl_->stats.rejected;
          break;
      }
    }
  }
  impl_->Wake();
  return results;
}

absl::StatusOr<Job> Learner::Submit(JobKind kind, std::string name, std::vector<Problem> problems,
                                    JobOptions options, std::string client_request_id) {
  if (kind == JobKind::kTrain && !options.algorithm.empty() && options.algorithm != "deepsearch" &&
      options.algorithm != "grpo") {
    return absl::InvalidArgumentError(absl::StrCat("options.algorithm: unknown algorithm '",
                                                   options.algorithm, "' (deepsearch or grpo)"));
  }
  if (options.samples_per_problem < 0 || options.max_steps < 0) {
    return absl::InvalidArgumentError(
        "options.samples_per_problem and options.max_steps must not be negative");
  }
  std::set<std::string> tasks;
  for (const Problem& p : problems) {
    if (p.id.empty()) return absl::InvalidArgumentError("a problem has no id");
    if (!tasks.insert(p.task).second) continue;
    if (absl::StatusOr<std::unique_ptr<TaskFamily>> family = MakeTaskFamily(p.task); !family.ok())
      return Annotate(family.status(), absl::StrCat("problem ", p.id, ": task '", p.task, "'"));
  }
  DS_ASSIGN_OR_RETURN(
      Job job, impl_->jobs->Submit(kind, std::move(name), std::move(problems), std::move(options),
                                   std::move(client_request_id)));
  impl_->Wake();
  return job;
}

absl::StatusOr<Job> Learner::Cancel(const std::string& job_id) {
  DS_ASSIGN_OR_RETURN(Job job, impl_->jobs->Cancel(job_id));
  const int64_t dropped = impl_->leases->CancelJob(job_id);
  log::Info("learner: job {} cancelled ({} leases dropped)", job_id, dropped);
  impl_->Wake();
  return job;
}

JobStore& Learner::jobs() { return *impl_->jobs; }

absl::Status Learner::Poll() {
  absl::MutexLock lock(&impl_->drive_mu);
  return impl_->PollLocked();
}

absl::Status Learner::Checkpoint() {
  absl::MutexLock lock(&impl_->drive_mu);
  return impl_->CheckpointLocked();
}

int64_t Learner::weight_version() const { return impl_->Version(); }

LearnerStats Learner::stats() const {
  LearnerStats s;
  {
    absl::MutexLock lock(&impl_->mu);
    s = impl_->stats;
  }
  s.leases = impl_->leases->counts();
  return s;
}

const LearnerOptions& Learner::options() const { return impl_->options; }

absl::StatusOr<WeightSet> Learner::CurrentWeights() const {
  absl::MutexLock lock(&impl_->drive_mu);
  return ExportWeights(impl_->trainer->model(), impl_->Version(), Dtype::kF32);
}

absl::Status RunTrainingWorker(const LearnerOptions& options, GradientReducer& reducer) {
  const int rank = reducer.rank();
  if (rank == 0 || reducer.world_size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat("RunTrainingWorker: rank ", rank, " of ",
                                                   reducer.world_size(),
                                                   " (rank 0 runs the learner itself)"));
  }
  const std::string where = absl::StrCat("data parallel rank ", rank);
  DS_ASSIGN_OR_RETURN(auto start, ReceiveCommand(reducer));
  if (start.first != RankCommand::kStart) {
    return absl::FailedPreconditionError(absl::StrCat(where, ": expected rank 0's start, got ",
                                                      std::string(CommandName(start.first))));
  }
  const Json payload = Json::parse(start.second, nullptr, /*allow_exceptions=*/false);
  if (!payload.is_object() || !payload.contains("model_config") ||
      !payload["model_config"].is_string() || !payload.contains("vocab_limit") ||
      !payload["vocab_limit"].is_number_integer()) {
    return absl::DataLossError(absl::StrCat(where, ": rank 0's start does not parse"));
  }
  DS_ASSIGN_OR_RETURN(
      const Qwen2Config model_config,
      Qwen2Config::FromJson(payload["model_config"].get<std::string>(), "rank 0's model config"));
  DS_ASSIGN_OR_RETURN(std::unique_ptr<Qwen2Model> model,
                      Qwen2Model::Create(model_config, ModelOptions{}));
  TrainerConfig train_config = options.train;
  train_config.decoupled = options.mode == "async";
  train_config.reducer = &reducer;
  // Rank 0 chose it from its tokenizer when the config leaves it to the model (0).
  if (train_config.vocab_limit == 0)
    train_config.vocab_limit = payload["vocab_limit"].get<int64_t>();
  DS_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer,
                      Trainer::Create(std::move(model), train_config));
  DS_RETURN_IF_ERROR(trainer->SyncWithRankZero());
  log::Info("learner: {} of {} ready at training step {}", where, reducer.world_size(),
            trainer->step());
  while (true) {
    DS_ASSIGN_OR_RETURN(auto command, ReceiveCommand(reducer));
    switch (command.first) {
      case RankCommand::kHeartbeat:
        break;
      case RankCommand::kStop:
        log::Info("learner: {}: rank 0 stopped the run after {} training steps", where,
                  trainer->step());
        return absl::OkStatus();
      case RankCommand::kStep: {
        DS_ASSIGN_OR_RETURN(const std::vector<TrainSequence> batch,
                            DecodeTrainSequences(command.second));
        absl::StatusOr<TrainStepStats> s = trainer->Step(batch);
        if (absl::IsInvalidArgument(s.status())) {
          // Rank 0 refused the same batch the same way and goes on.
          log::Warning("learner: {}: step refused: {}", where, s.status().message());
          break;
        }
        if (!s.ok()) return s.status();
        log::Info("learner: {}: step {}: {} of {} sequences, {} tokens, loss {:.4f}, {:.1f} s",
                  where, s->step, s->sequences, batch.size(), s->tokens, s->loss, s->seconds);
        break;
      }
      case RankCommand::kStart:
        return absl::FailedPreconditionError(
            absl::StrCat(where, ": rank 0 started again without a new process group"));
    }
  }
}

}  // namespace deepsearch
