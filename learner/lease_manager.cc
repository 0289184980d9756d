#include "learner/lease_manager.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace deepsearch {

enum class LeaseState { kPending, kIssued };

struct LeaseManager::Entry {
  std::string lease_id;
  LeaseSpec spec;
  LeaseState state = LeaseState::kPending;
  int32_t attempt = 1;
  std::string actor_id;
  absl::Time deadline;
  bool actor_completed = false;
  std::map<int32_t, TrajectoryRecord> trajectories;  // of the current attempt, by index
  std::string last_failure;

  std::string tree_id() const { return absl::StrCat(lease_id, ".", attempt); }
};

absl::Duration StalledFor(const LeaseCounts& counts, absl::Duration stall_after, absl::Time now) {
  const absl::Duration silent = now - counts.last_actor_contact;
  const bool stalled = counts.pending + counts.issued > 0 && silent >= stall_after;
  return stalled ? silent : absl::ZeroDuration();
}

LeaseManager::LeaseManager(LeaseManagerOptions options)
    : options_(options), last_actor_contact_(absl::Now()) {}
LeaseManager::~LeaseManager() = default;

std::string LeaseManager::Add(LeaseSpec spec) {
  absl::MutexLock lock(&mu_);
  const std::string id = absl::StrCat(spec.job_id.empty() ? "lease" : spec.job_id, "-", next_id_++);
  auto entry = std::make_unique<Entry>();
  Entry& e = *entry;
  leases_[id] = std::move(entry);
  e.lease_id = id;
  e.spec = std::move(spec);
  pending_.push_back(id);
  return id;
}

void LeaseManager::RequeueLocked(Entry& e, const std::string& reason) {
  e.last_failure = reason;
  e.trajectories.clear();
  e.actor_completed = false;
  e.actor_id.clear();
  if (e.attempt >= options_.max_attempts) {
    const std::string id = e.lease_id;
    failed_.push_back(FailedLease{id, std::move(e.spec), reason});
    leases_.erase(id);
    return;
  }
  ++e.attempt;
  e.state = LeaseState::kPending;
  pending_.push_front(e.lease_id);  // retried before newer work
}

void LeaseManager::ExpireOverdue(absl::Time now) {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> overdue;
  for (auto& [id, e] : leases_) {
    if (e->state == LeaseState::kIssued && e->deadline < now) overdue.push_back(id);
  }
  for (const std::string& id : overdue) {
    Entry& e = *leases_.at(id);
    ++expired_;
    RequeueLocked(e, absl::StrCat("attempt ", e.attempt, " expired on actor ", e.actor_id));
  }
}

std::vector<IssuedLease> LeaseManager::Issue(const std::string& actor_id, int32_t max,
                                             absl::Time now) {
  ExpireOverdue(now);
  absl::MutexLock lock(&mu_);
  last_actor_contact_ = std::max(last_actor_contact_, now);
  std::vector<IssuedLease> out;
  while (static_cast<int32_t>(out.size()) < max && !pending_.empty()) {
    const std::string id = pending_.front();
    pending_.pop_front();
    auto it = leases_.find(id);
    if (it == leases_.end() || it->second->state != LeaseState::kPending) continue;  // cancelled
    Entry& e = *it->second;
    e.state = LeaseState::kIssued;
    e.actor_id = actor_id;
    e.deadline = now + options_.lease_duration;
    out.push_back(IssuedLease{e.lease_id, e.attempt, e.deadline, e.spec});
  }
  return out;
}

std::vector<LeaseRenewal> LeaseManager::Renew(const std::string& actor_id,
                                              const std::vector<std::string>& lease_ids,
                                              absl::Time now) {
  absl::MutexLock lock(&mu_);
  last_actor_contact_ = std::max(last_actor_contact_, now);
  std::vector<LeaseRenewal> out;
  for (const std::string& id : lease_ids) {
    LeaseRenewal r;
    r.lease_id = id;
    auto it = leases_.find(id);
    if (it == leases_.end()) {
      r.reason = "unknown, finished or cancelled lease";
    } else if (it->second->state != LeaseState::kIssued || it->second->actor_id != actor_id) {
      r.reason = "the lease expired and was issued again";
    } else if (it->second->deadline < now) {
      // Past its deadline but not yet re-issued: expire it now rather than revive it.
      ++expired_;
      RequeueLocked(*it->second,
                    absl::StrCat("attempt ", it->second->attempt, " expired on actor ", actor_id));
      r.reason = "the lease expired";
    } else {
      it->second->deadline = now + options_.lease_duration;
      r.renewed = true;
      r.deadline = it->second->deadline;
    }
    out.push_back(std::move(r));
  }
  return out;
}

void LeaseManager::MaybeCompleteLocked(Entry& e) {
  if (!e.actor_completed || static_cast<int32_t>(e.trajectories.size()) != e.spec.num_trajectories)
    return;
  const std::string id = e.lease_id;
  CompletedTree t;
  t.lease_id = id;
  t.tree_id = e.tree_id();
  t.spec = std::move(e.spec);
  for (auto& [index, record] : e.trajectories) t.trajectories.push_back(std::move(record));
  completed_.push_back(std::move(t));
  leases_.erase(id);
}

std::vector<IngestResult> LeaseManager::Ingest(std::vector<TrajectoryRecord> records) {
  absl::MutexLock lock(&mu_);
  last_actor_contact_ = std::max(last_actor_contact_, absl::Now());
  std::vector<IngestResult> out;
  for (TrajectoryRecord& r : records) {
    IngestResult result;
    auto reject = [&](std::string reason) {
      result.outcome = IngestOutcome::kRejected;
      result.reason = std::move(reason);
    };
    if (seen_trajectories_.count(r.trajectory_id) > 0) {
      result.outcome = IngestOutcome::kDuplicate;
      out.push_back(std::move(result));
      continue;
    }
    auto it = leases_.find(r.lease_id);
    const size_t slash = r.trajectory_id.rfind('/');
    int32_t index = -1;
    if (it == leases_.end()) {
      reject(absl::StrCat("unknown, finished or cancelled lease '", r.lease_id, "'"));
    } else if (slash == std::string::npos || r.trajectory_id.substr(0, slash) != r.tree_id ||
               !absl::SimpleAtoi(r.trajectory_id.substr(slash + 1), &index)) {
      reject(absl::StrCat("trajectory id '", r.trajectory_id,
                          "' is not '<tree_id>/<index>' of tree '", r.tree_id, "'"));
    } else if (it->second->state != LeaseState::kIssued || r.tree_id != it->second->tree_id()) {
      reject(absl::StrCat("tree '", r.tree_id,
                          "' is from a stale attempt (the lease is at attempt ",
                          it->second->attempt, ")"));
    } else if (index < 0 || index >= it->second->spec.num_trajectories) {
      reject(absl::StrCat("index ", index, " is outside the lease's ",
                          it->second->spec.num_trajectories, " trajectories"));
    } else if (r.sequence.response_tokens.empty() ||
               r.sequence.token_scores.size() != r.sequence.response_tokens.size() ||
               (!r.sequence.behavior_logprobs.empty() &&
                r.sequence.behavior_logprobs.size() != r.sequence.response_tokens.size())) {
      reject(absl::StrCat("trajectory '", r.trajectory_id,
                          "' is malformed: ", r.sequence.response_tokens.size(),
                          " response tokens, ", r.sequence.token_scores.size(), " scores, ",
                          r.sequence.behavior_logprobs.size(), " log-probs"));
    } else {
      seen_trajectories_.insert(r.trajectory_id);
      Entry& e = *it->second;
      r.sequence.group_id = r.tree_id;
      e.trajectories[index] = std::move(r);
      MaybeCompleteLocked(e);
    }
    out.push_back(std::move(result));
  }
  return out;
}

LeaseManager::Entry* LeaseManager::HeldLocked(const std::string& actor_id,
                                              const std::string& lease_id) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end() || it->second->state != LeaseState::kIssued ||
      it->second->actor_id != actor_id) {
    return nullptr;
  }
  return it->second.get();
}

void LeaseManager::Complete(const std::string& actor_id, const std::string& lease_id) {
  absl::MutexLock lock(&mu_);
  last_actor_contact_ = std::max(last_actor_contact_, absl::Now());
  Entry* e = HeldLocked(actor_id, lease_id);
  if (e == nullptr) return;  // not this actor's any more: its results are stale
  e->actor_completed = true;
  MaybeCompleteLocked(*e);
}

void LeaseManager::Fail(const std::string& actor_id, const std::string& lease_id,
                        const std::string& reason) {
  absl::MutexLock lock(&mu_);
  last_actor_contact_ = std::max(last_actor_contact_, absl::Now());
  Entry* e = HeldLocked(actor_id, lease_id);
  if (e != nullptr) RequeueLocked(*e, absl::StrCat("actor ", actor_id, ": ", reason));
}

int64_t LeaseManager::CancelJob(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  int64_t n = 0;
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second->spec.job_id == job_id) {
      it = leases_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  for (auto it = pending_.begin(); it != pending_.end();)
    it = leases_.count(*it) == 0 ? pending_.erase(it) : std::next(it);
  auto drop = [&](auto& v) {
    v.erase(
        std::remove_if(v.begin(), v.end(), [&](const auto& x) { return x.spec.job_id == job_id; }),
        v.end());
  };
  drop(completed_);
  drop(failed_);
  return n;
}

std::vector<CompletedTree> LeaseManager::TakeCompleted() {
  absl::MutexLock lock(&mu_);
  std::vector<CompletedTree> out;
  out.swap(completed_);
  return out;
}

std::vector<FailedLease> LeaseManager::TakeFailed() {
  absl::MutexLock lock(&mu_);
  std::vector<FailedLease> out;
  out.swap(failed_);
  return out;
}

LeaseCounts LeaseManager::counts() const {
  absl::MutexLock lock(&mu_);
  LeaseCounts c;
  for (const auto& [id, e] : leases_)
    (e->state == LeaseState::kPending ? c.pending : c.issued) += 1;
  c.completed = static_cast<int64_t>(completed_.size());
  c.failed = static_cast<int64_t>(failed_.size());
  c.expired = expired_;
  c.last_actor_contact = last_actor_contact_;
  return c;
}

int64_t LeaseManager::Outstanding(const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  int64_t n = 0;
  for (const auto& [id, e] : leases_) n += e->spec.job_id == job_id ? 1 : 0;
  return n;
}

}  // namespace deepsearch
