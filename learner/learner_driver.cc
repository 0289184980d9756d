#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

#include "common/core/files.h"
#include "common/core/logging.h"
#include "common/core/rng.h"
#include "common/core/status.h"
#include "learner/learner_impl.h"

namespace deepsearch {

int64_t Learner::Impl::MinWeightVersion() const {
  if (sink == nullptr) return 0;  // actors keep the weights they have
  const int64_t version = Version();
  if (options.mode == LearnerMode::kAsync)
    return std::max<int64_t>(0, version + 1 - options.max_policy_lag);
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
  if (restored_train.has_value() && restored_train->job_id == job.id) {
    RunState::Train r = std::move(*restored_train);
    restored_train.reset();
    DS_ASSIGN_OR_RETURN(TrainProgram program, TrainProgram::FromJson(r.program, job.id));
    program.ReleaseScreening();
    run.program = std::move(program);
    run.solved = std::move(r.solved);
    run.trajectories = r.trajectories;
    run.generated_tokens = r.generated_tokens;
    run.screening_tokens = r.screening_tokens;
    run.trained_tokens = r.trained_tokens;
    run.last_accuracy = r.last_accuracy;
    if (r.collecting.has_value()) {
      Collection c;
      c.step = r.collecting->step;
      c.problems = std::move(r.collecting->problems);
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
  } else {
    TrainProgramConfig config = options.program;
    if (job.options.algorithm) config.algorithm = *job.options.algorithm;
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
            AlgorithmName(train->program->config().algorithm));
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
  for (CompletedTree& tree : leases->TakeCompleted()) RouteCompletedLocked(tree);
  for (FailedLease& failed : leases->TakeFailed()) RouteFailedLocked(failed);
  FinishSolvesLocked();
}

void Learner::Impl::RouteCompletedLocked(CompletedTree& tree) {
  const std::string& job_id = tree.spec.job_id;
  const std::string& purpose = tree.spec.purpose;
  if (purpose == kPurposeSolve) {
    auto it = solves.find(job_id);
    if (it == solves.end() || it->second.outstanding.erase(tree.lease_id) == 0) return;
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
    return;
  }
  if (!train.has_value() || train->job_id != job_id) return;  // a cancelled job's leftovers
  TrainRun& run = *train;
  for (const TrajectoryRecord& r : tree.trajectories) {
    if (r.correct) run.solved.insert(tree.spec.problem.id);
    ++run.trajectories;
    run.generated_tokens += r.tree_generated_tokens;
    if (purpose == kPurposeScreen) run.screening_tokens += r.tree_generated_tokens;
  }
  if (purpose == kPurposeScreen) {
    if (run.screening.erase(tree.lease_id) == 0) return;
    int32_t correct = 0;
    for (const TrajectoryRecord& r : tree.trajectories) correct += r.correct ? 1 : 0;
    run.program->OnScreened(tree.spec.problem.id, static_cast<int32_t>(tree.trajectories.size()),
                            correct);
  } else if (purpose == kPurposeTrain && run.collecting.has_value() &&
             run.collecting->outstanding.erase(tree.lease_id) > 0) {
    run.collecting->trees.push_back(std::move(tree));
  }
}

void Learner::Impl::RouteFailedLocked(const FailedLease& failed) {
  const std::string& job_id = failed.spec.job_id;
  log::Warning("learner: lease {} of job {} failed for good: {}", failed.lease_id, job_id,
               failed.reason);
  if (failed.spec.purpose == kPurposeSolve) {
    auto it = solves.find(job_id);
    if (it == solves.end() || it->second.outstanding.erase(failed.lease_id) == 0) return;
    ProblemResult result;
    result.problem_id = failed.spec.problem.id;
    result.summary.selection = "none";
    (void)jobs->Update(job_id, [&](Job& j) {
      ++j.progress.problems_done;
      j.results.push_back(result);
    });
    return;
  }
  if (!train.has_value() || train->job_id != job_id) return;
  TrainRun& run = *train;
  if (failed.spec.purpose == kPurposeScreen) {
    if (run.screening.erase(failed.lease_id) > 0)
      run.program->OnScreeningFailed(failed.spec.problem.id);
  } else if (run.collecting.has_value() && run.collecting->outstanding.erase(failed.lease_id) > 0) {
    ++run.collecting->failed;  // the step trains without this tree
  }
}

void Learner::Impl::FinishSolvesLocked() {
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

void Learner::Impl::CloseCollectionLocked() {
  TrainRun& run = *train;
  TrainProgram& program = *run.program;
  const bool async = options.mode == LearnerMode::kAsync;
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
}

absl::StatusOr<bool> Learner::Impl::TrainStepLocked() {
  TrainRun& run = *train;
  TrainProgram& program = *run.program;
  const bool async = options.mode == LearnerMode::kAsync;
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
      return false;
    }
    log::Warning("learner: step {} of job {} is skipped: its batch was refused: {}", step,
                 run.job_id, trained.message());
  }
  if (!async) program.StepDone(run.BudgetTokens());
  UpdateTrainProgressLocked();
  const int64_t steps = trainer->step();
  if (options.checkpoint_every > 0 && steps % options.checkpoint_every == 0)
    DS_RETURN_IF_ERROR(CheckpointLocked());
  // The new version goes out (PollOnce, outside drive_mu) before the next step is leased.
  return unpublished_version < 0;
}

absl::Status Learner::Impl::AdvanceTrainLocked() {
  if (!train.has_value()) return absl::OkStatus();
  TrainRun& run = *train;
  TrainProgram& program = *run.program;
  const bool async = options.mode == LearnerMode::kAsync;
  CloseCollectionLocked();
  if (run.ready.has_value()) {
    DS_ASSIGN_OR_RETURN(const bool go_on, TrainStepLocked());
    if (!go_on) return absl::OkStatus();
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

absl::Status Learner::Impl::PollLocked() {
  // A version that could not be published holds everything back: actors in sync mode would
  // wait for it forever.
  if (unpublished_version >= 0) {
    if (train.has_value()) UpdateTrainProgressLocked();  // the job's phase says what it waits for
    return absl::UnavailableError(
        absl::StrCat("weight version ", unpublished_version, " waits to be published"));
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

absl::Status Learner::Impl::PollOnce() {
  absl::MutexLock poll(&poll_mu);
  DS_RETURN_IF_ERROR(PublishPending());
  // A poll that trains returns before leasing the next step; the next round leases it once
  // the new version is out.
  for (int round = 0; round < 2; ++round) {
    bool trained = false;
    {
      absl::MutexLock lock(&drive_mu);
      DS_RETURN_IF_ERROR(PollLocked());
      trained = unpublished_version >= 0;
    }
    if (!trained) return absl::OkStatus();
    DS_RETURN_IF_ERROR(PublishPending());
  }
  return absl::OkStatus();
}

// Leases of actors that vanished expire at their deadlines (and are issued again) even while
// no actor asks for work; the stall that follows is logged when it starts and ends.
void Learner::Impl::WatchActors() {
  leases->ExpireOverdue(absl::Now());
  const LeaseCounts c = leases->counts();
  const absl::Duration silent = StalledFor(c, options.stall_after, absl::Now());
  const bool stalled_now = silent > absl::ZeroDuration();
  if (stalled_now && !stalled) {
    log::Warning(
        "learner: stalled: no actor has asked for work or delivered for {:.0f} s; {} lease(s) "
        "wait and {} are out (re-issued when their deadlines pass)",
        absl::ToDoubleSeconds(silent), c.pending, c.issued);
  } else if (!stalled_now && stalled) {
    log::Info("learner: actors are back; the stall is over");
  }
  stalled = stalled_now;
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
    WatchActors();
    const absl::Status status = PollOnce();
    if (!status.ok() && absl::Now() - last_error > absl::Seconds(10)) {
      log::Error("learner: {}", status.message());
      last_error = absl::Now();
    }
  }
}

}  // namespace deepsearch
