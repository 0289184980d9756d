// Leases: the learner's units of work for actors (ARCHITECTURE §3-§4), with deadlines,
// renewal, re-issue, and idempotent ingestion of the trajectories that come back.
//
//   LeaseManager leases({.lease_duration = absl::Seconds(60), .max_attempts = 3});
//   const std::string id = leases.Add(spec);              // pending
//   std::vector<IssuedLease> out = leases.Issue("actor-1", 8, now);
//   leases.Ingest(records);                               // trajectories, deduplicated
//   leases.Complete("actor-1", id);                       // the tree is all in
//   for (CompletedTree& t : leases.TakeCompleted()) ...   // ready for training
//
// Life of a lease: pending -> issued (to one actor, until a deadline that renewals extend)
// -> completed when the actor reports it complete and all num_trajectories of its current
// attempt's tree have arrived; or back to pending with attempt + 1 when its deadline passes
// or the actor reports it failed, until max_attempts, after which it is dropped as failed.
// The tree of attempt a is "<lease_id>.<a>"; trajectories of any other attempt (a re-issued
// lease's first actor finishing late) are rejected as stale, so a tree's group never mixes
// attempts. Trajectory ids are remembered: a second delivery is a duplicate, not counted.
//
// Core types only (no gRPC); the LearnerService adapter converts. Thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "search/search_params.h"
#include "trainer/train_batch.h"

#include "common/sampling/sampler.h"
#include "common/tasks/problem.h"

namespace deepsearch {

enum class LeaseKind { kSearch, kRollout, kSolve };

// What a lease asks for.
struct LeaseSpec {
  std::string job_id;
  LeaseKind kind = LeaseKind::kSearch;
  Problem problem;
  int32_t num_trajectories = 8;
  SamplingParams sampling;  // max_new_tokens comes from the search parameters
  SearchParams search;
  int64_t min_weight_version = 0;
  bool use_solution_cache = false;
  // The learner's own bookkeeping (what the result is for: "train", "screen", "solve"...).
  std::string purpose;
  int64_t step = 0;
};

struct IssuedLease {
  std::string lease_id;
  int32_t attempt = 1;
  absl::Time deadline;
  LeaseSpec spec;
};

// One trajectory as the learner ingests it.
struct TrajectoryRecord {
  std::string trajectory_id;
  std::string lease_id;
  std::string tree_id;
  TrainSequence sequence;  // group_id = tree_id
  bool correct = false;
  bool incomplete = false;  // truncated without an answer
  bool from_cache = false;
  // Tokens the tree sampled, each once, on its first trajectory (v1::Trajectory).
  int64_t tree_generated_tokens = 0;
  std::string predicted;  // the verifier's normalised answer
  std::string response_text;
};

// A lease whose tree is complete: exactly num_trajectories trajectories of one attempt.
struct CompletedTree {
  std::string lease_id;
  std::string tree_id;
  LeaseSpec spec;
  std::vector<TrajectoryRecord> trajectories;  // in index order
};

struct FailedLease {
  std::string lease_id;
  LeaseSpec spec;
  std::string reason;  // the last failure
};

enum class IngestOutcome { kAccepted, kDuplicate, kRejected };

struct IngestResult {
  IngestOutcome outcome = IngestOutcome::kAccepted;
  std::string reason;  // for kRejected
};

struct LeaseRenewal {
  std::string lease_id;
  bool renewed = false;
  absl::Time deadline;
  std::string reason;
};

struct LeaseManagerOptions {
  absl::Duration lease_duration = absl::Seconds(120);
  int32_t max_attempts = 3;
};

struct LeaseCounts {
  int64_t pending = 0;
  int64_t issued = 0;
  int64_t completed = 0;  // waiting in TakeCompleted
  int64_t failed = 0;     // waiting in TakeFailed
  int64_t expired = 0;    // attempts whose deadline passed, since the start (cumulative)
  // When an actor last asked for work, renewed, delivered or gave a lease up (the manager's
  // creation before any did): a learner whose actors vanished sees it fall behind.
  absl::Time last_actor_contact;
};

// How long leases have waited or been out with no actor heard from, once that silence has
// lasted `stall_after`; zero when actors are active or no lease waits (the learner's stall).
absl::Duration StalledFor(const LeaseCounts& counts, absl::Duration stall_after, absl::Time now);

class LeaseManager {
 public:
  explicit LeaseManager(LeaseManagerOptions options);
  ~LeaseManager();

  // Queues a lease; returns its id ("<job_id>-<n>").
  std::string Add(LeaseSpec spec);
  // Hands out up to `max` pending leases (oldest first) to `actor_id`, after expiring
  // overdue ones.
  std::vector<IssuedLease> Issue(const std::string& actor_id, int32_t max, absl::Time now);
  // Extends the deadlines of the actor's leases; leases it does not hold (expired,
  // re-issued, completed, cancelled) are refused with the reason.
  std::vector<LeaseRenewal> Renew(const std::string& actor_id,
                                  const std::vector<std::string>& lease_ids, absl::Time now);
  // Ingests trajectories; one result per record.
  std::vector<IngestResult> Ingest(std::vector<TrajectoryRecord> records);
  // The actor reports a lease done; the lease completes once its tree is all in (at once,
  // or when the missing trajectories arrive).
  void Complete(const std::string& actor_id, const std::string& lease_id);
  // The actor gave the lease up: re-issued (next attempt) or, after max_attempts, failed.
  void Fail(const std::string& actor_id, const std::string& lease_id, const std::string& reason);
  // Expires overdue leases (called by Issue, and by the learner's driver every pass, so that
  // leases of actors that vanished are re-queued at their deadlines even when no actor asks).
  void ExpireOverdue(absl::Time now);
  // Drops every lease of a job, in whatever state; returns how many.
  int64_t CancelJob(const std::string& job_id);

  std::vector<CompletedTree> TakeCompleted();
  std::vector<FailedLease> TakeFailed();
  LeaseCounts counts() const;
  // Leases of a job not yet completed or failed.
  int64_t Outstanding(const std::string& job_id) const;

 private:
  struct Entry;
  void RequeueLocked(Entry& e, const std::string& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeCompleteLocked(Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The lease if it is issued to `actor_id`, else nullptr.
  Entry* HeldLocked(const std::string& actor_id, const std::string& lease_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const LeaseManagerOptions options_;
  mutable absl::Mutex mu_;
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, std::unique_ptr<Entry>> leases_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> pending_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> seen_trajectories_ ABSL_GUARDED_BY(mu_);
  std::vector<CompletedTree> completed_ ABSL_GUARDED_BY(mu_);
  std::vector<FailedLease> failed_ ABSL_GUARDED_BY(mu_);
  int64_t expired_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_actor_contact_ ABSL_GUARDED_BY(mu_);
};

}  // namespace deepsearch
