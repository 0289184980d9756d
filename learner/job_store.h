// Jobs: the problem sets clients submit (ProblemService), durable in the learner's state
// directory so that they and their progress survive restarts (ARCHITECTURE §4).
//
//   JobStore store = *JobStore::Open("/var/lib/deepsearch/jobs");
//   Job job = *store.Submit(JobKind::kSolve, "eval", problems, options, "client-req-1");
//   store.Update(job.id, [](Job& j) { j.progress.problems_done += 1; });
//   store.WaitForChange(job.id, seen_version, deadline);   // for WatchJob
//
// Layout: <dir>/<job_id>/problems.jsonl (written once, at submission) and job.json (state,
// options, progress and results, rewritten on every change). Each file is written to a
// temporary name, fsynced and renamed, so a crash leaves the old version or the new one,
// never a mix. A job whose files do not parse is reported by Open with the path and skipped,
// not fatal: the other jobs still load.
//
// Torch- and gRPC-free. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "search/search_params.h"

#include "common/tasks/answer_selection.h"
#include "common/tasks/problem.h"
#include "learner/train_program.h"

namespace deepsearch {

enum class JobKind { kTrain, kSolve };
enum class JobState { kPending, kRunning, kSucceeded, kFailed, kCancelled };
std::string_view JobStateName(JobState state);
bool IsTerminal(JobState state);

struct JobOptions {
  std::optional<Algorithm> algorithm;  // train; unset: the learner's default
  std::optional<SamplingConfig> sampling;
  std::optional<SearchParams> search;
  int32_t samples_per_problem = 0;  // solve: leaves per problem (0: the default)
  int32_t max_steps = 0;            // train: 0 = until the hard subset is empty
  // solve: a search tree per problem, or samples_per_problem direct samples (no search).
  enum class SolveMode { kSearch, kRollout } solve_mode = SolveMode::kSearch;
};

// "search" or "rollout": how the wire (JobOptions.solve_mode) and job.json spell a solve mode.
std::string_view SolveModeName(JobOptions::SolveMode mode);
// The mode `name` spells; nullopt for any other text.
std::optional<JobOptions::SolveMode> ParseSolveMode(std::string_view name);

struct JobProgress {
  int32_t problems_total = 0;
  int32_t problems_done = 0;
  int32_t problems_solved = 0;
  int64_t trajectories = 0;
  int64_t generated_tokens = 0;  // sampled by the actors, each token once
  int64_t screening_tokens = 0;  // train: the part of generated_tokens spent screening
  int64_t trained_tokens = 0;    // train: response tokens of the trained batches
  int64_t training_steps = 0;
  int64_t weight_version = 0;
  double accuracy = 0.0;
  std::string phase;
};

// A solved problem's result (solve jobs).
struct ProblemResult {
  std::string problem_id;
  SolveSummary summary;
};

struct Job {
  std::string id;
  JobKind kind = JobKind::kTrain;
  JobState state = JobState::kPending;
  std::string name;
  std::string client_request_id;
  absl::Time create_time;
  absl::Time update_time;
  JobOptions options;
  JobProgress progress;
  std::string error;
  std::vector<ProblemResult> results;  // solve jobs, in completion order
  int64_t version = 0;                 // bumped on every change
};

struct JobListPage {
  std::vector<Job> jobs;  // newest first
  std::string next_page_token;
};

class JobStore {
 public:
  // Opens (creating) the directory and loads every job in it. Problems are loaded lazily.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& dir);

  // Creates a job (durably) and returns it. With a non-empty client_request_id that was seen
  // before, returns that job instead (a retried request). Errors: no problems, duplicate
  // problem ids (named), an unwritable directory.
  absl::StatusOr<Job> Submit(JobKind kind, std::string name, std::vector<Problem> problems,
                             JobOptions options, std::string client_request_id);
  absl::StatusOr<Job> Get(const std::string& job_id) const;
  absl::StatusOr<std::vector<Problem>> Problems(const std::string& job_id) const;
  // page_size <= 0: 50; at most 1000. Errors: a malformed page token.
  absl::StatusOr<JobListPage> List(int32_t page_size, const std::string& page_token,
                                   std::optional<JobState> filter) const;
  // Applies `change` and persists the job. Errors: unknown job, write failure (the change is
  // then not kept).
  absl::StatusOr<Job> Update(const std::string& job_id, const std::function<void(Job&)>& change);
  // Cancels a job that has not finished (FAILED_PRECONDITION otherwise).
  absl::StatusOr<Job> Cancel(const std::string& job_id);
  // Blocks until the job's version exceeds `seen_version` or the deadline passes; returns the
  // job as it is then.
  absl::StatusOr<Job> WaitForChange(const std::string& job_id, int64_t seen_version,
                                    absl::Time deadline) const;
  // Jobs not in a terminal state, oldest first (what the learner resumes).
  std::vector<Job> Active() const;
  // Problems with unreadable job files found by Open: "path: reason".
  const std::vector<std::string>& load_errors() const { return load_errors_; }

 private:
  explicit JobStore(std::string dir) : dir_(std::move(dir)) {}
  absl::Status PersistLocked(const Job& job) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dir_;
  mutable absl::Mutex mu_;
  mutable absl::CondVar changed_;
  std::map<std::string, Job> jobs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> by_request_ ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<std::string> load_errors_;
};

}  // namespace deepsearch
