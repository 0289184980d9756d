#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

#include "common/core/backoff.h"
#include "common/core/files.h"
#include "common/core/logging.h"
#include "common/core/rng.h"
#include "common/core/status.h"
#include "common/model/weight_export.h"
#include "learner/learner_impl.h"

namespace deepsearch {

namespace fs = std::filesystem;

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
    if (options.mode == LearnerMode::kAsync && version - oldest > options.max_policy_lag) {
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
    DS_RETURN_IF_ERROR(channel->Run(RankCommand::kStep, EncodeTrainSequences(batch),
                                    [&] { stepped = trainer->Step(batch); }));
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
  unpublished_version = new_version;  // published by PollOnce before the next step is leased
  return absl::OkStatus();
}

absl::Status Learner::Impl::CheckpointLocked() {
  const int64_t steps = trainer->step();
  RunState state;
  state.weight_version = Version();
  state.training_steps = steps;
  if (train.has_value()) {
    const TrainRun& run = *train;
    RunState::Train& t = state.train.emplace();
    t.job_id = run.job_id;
    t.program = run.program->ToJson();
    t.solved = run.solved;
    t.trajectories = run.trajectories;
    t.generated_tokens = run.generated_tokens;
    t.screening_tokens = run.screening_tokens;
    t.trained_tokens = run.trained_tokens;
    t.last_accuracy = run.last_accuracy;
    if (run.collecting.has_value())
      t.collecting = RunState::Train::Collecting{run.collecting->step, run.collecting->problems};
  }
  auto write_model = [&](const std::string& dir) -> absl::Status {
    const fs::path model_dir(dir);
    DS_RETURN_IF_ERROR(trainer->Save(model_dir.string()));
    DS_RETURN_IF_ERROR(WriteFileAtomically((model_dir / "config.json").string(),
                                           trainer->model().config().ToJson()));
    DS_RETURN_IF_ERROR(
        WriteFileAtomically((model_dir / "generation_config.json").string(), generation.ToJson()));
    return WriteFileAtomically((model_dir / "tokenizer.json").string(), tokenizer_json);
  };
  DS_ASSIGN_OR_RETURN(const std::string target, checkpoints->Write(steps, state, write_model));
  {
    absl::MutexLock lock(&mu);
    ++stats.checkpoints;
  }
  log::Info("learner: checkpoint {} (version {})", target, state.weight_version);
  return absl::OkStatus();
}

absl::Status Learner::Impl::PublishPending() {
  WeightSet set;
  {
    absl::MutexLock lock(&drive_mu);
    if (unpublished_version < 0) return absl::OkStatus();
    if (sink == nullptr || (reducer != nullptr && reducer->rank() != 0)) {
      unpublished_version = -1;
      return absl::OkStatus();
    }
    DS_ASSIGN_OR_RETURN(const Dtype dtype, WeightDtype(options.publish_dtype));
    DS_ASSIGN_OR_RETURN(set, ExportWeights(trainer->model(), unpublished_version, dtype));
  }
  const absl::Status published = Publish(set);
  absl::MutexLock lock(&drive_mu);
  if (published.ok()) {
    unpublished_version = -1;
  } else {
    unpublished_version = set.version;                   // renumbered, perhaps
    if (train.has_value()) UpdateTrainProgressLocked();  // the job's phase says what it waits for
  }
  return published;
}

absl::Status Learner::Impl::Publish(WeightSet& set) {
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
  };
  absl::Status status = absl::OkStatus();
  // The schedule every client of a peer uses (common/core/backoff.h), from 100 ms up to 2 s.
  Backoff backoff(absl::Milliseconds(100), absl::Seconds(2), static_cast<uint64_t>(set.version));
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
      absl::MutexLock lock(&mu);
      stats.unpublished_version = 0;
      stats.waiting_for.clear();
      return absl::OkStatus();
    }
    log::Warning("learner: publishing weight version {} failed (attempt {} of {}): {}", set.version,
                 attempt, options.publish_attempts, status.message());
    if (attempt < options.publish_attempts) absl::SleepFor(backoff.Next());
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

}  // namespace deepsearch
