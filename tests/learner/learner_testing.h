// Test helpers for the learner: a scratch directory, a tiny model, a recording weight sink,
// and an in-process actor that answers leases with deterministic trajectories.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

#include "common/core/rng.h"
#include "common/model/model_dir.h"
#include "learner/learner.h"

namespace deepsearch::testing_learner {

class ScratchDir {
 public:
  explicit ScratchDir(std::string_view name) {
    static std::atomic<int> counter{0};
    path_ = absl::StrCat(::testing::TempDir(), "/", std::string(name), "_", ::getpid(), "_",
                         counter.fetch_add(1));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::string Sub(std::string_view name) const {
    return absl::StrCat(path_, "/", std::string(name));
  }

 private:
  std::string path_;
};

// A randomly initialised `tiny` model directory under `dir`.
inline std::string TinyModel(const ScratchDir& dir, uint64_t seed = 7) {
  const std::string path = dir.Sub("model");
  const absl::Status s = InitModelDirectory("tiny", path, seed, /*overwrite=*/true);
  EXPECT_TRUE(s.ok()) << s;
  return path;
}

// Records every published version; refuses versions the way the cache service does (a
// version taken by other weights, one older than the newest), and can be taken down.
class RecordingSink final : public WeightSink {
 public:
  absl::Status Publish(const WeightSet& weights) override {
    absl::MutexLock lock(&mu_);
    if (down_) return absl::UnavailableError("the sink is down");
    auto it = stored_.find(weights.version);
    if (it != stored_.end()) {
      if (it->second == weights.tensors) return absl::AlreadyExistsError("same weights");
      return absl::FailedPreconditionError("stored with other weights");
    }
    if (!stored_.empty() && weights.version < stored_.rbegin()->first)
      return absl::FailedPreconditionError("not newer than the newest");
    stored_.emplace(weights.version, weights.tensors);
    versions_.push_back(weights.version);
    return absl::OkStatus();
  }
  absl::StatusOr<int64_t> LatestVersion() override {
    absl::MutexLock lock(&mu_);
    if (down_) return absl::UnavailableError("the sink is down");
    return stored_.empty() ? 0 : stored_.rbegin()->first;
  }
  // Publishes and LatestVersion fail with UNAVAILABLE while down.
  void SetDown(bool down) {
    absl::MutexLock lock(&mu_);
    down_ = down;
  }
  // Stores `version` with other weights than any learner has (what a lost step published).
  void StoreForeign(int64_t version) {
    absl::MutexLock lock(&mu_);
    stored_[version] = {};
    versions_.push_back(version);
  }
  std::vector<int64_t> versions() const {
    absl::MutexLock lock(&mu_);
    return versions_;
  }

 private:
  mutable absl::Mutex mu_;
  bool down_ = false;
  std::map<int64_t, std::vector<WeightTensor>> stored_;
  std::vector<int64_t> versions_;
};

// How many of a lease's trajectories are correct, by problem: problem "p<k>" gets
// min(k, n) correct trajectories (the first ones).
inline int32_t CorrectCount(const std::string& problem_id, int32_t n) {
  const int32_t k = problem_id.size() > 1 ? std::atoi(problem_id.c_str() + 1) : 0;
  return std::min(k, n);
}

// The tokens every answered tree sampled (on its first trajectory, as an actor sends them).
inline constexpr int64_t kTreeTokens = 50;

// The trajectories an actor would send for `lease`, a function of the lease's sampling seed,
// problem and index only (not of lease ids), so two runs that issue the same work get the
// same data. Responses are 3 to 6 tokens below `vocab`; the score of every token is the
// outcome reward (+1 correct, -1 wrong), as in a rollout.
inline std::vector<TrajectoryRecord> AnswerLease(const IssuedLease& lease, int64_t weight_version,
                                                 int32_t vocab = 40) {
  std::vector<TrajectoryRecord> out;
  const std::string tree_id = absl::StrCat(lease.lease_id, ".", lease.attempt);
  const int32_t n = lease.spec.num_trajectories;
  const int32_t correct = CorrectCount(lease.spec.problem.id, n);
  for (int32_t i = 0; i < n; ++i) {
    Rng rng = Rng(lease.spec.sampling.seed).Fork(static_cast<uint64_t>(i));
    TrajectoryRecord r;
    r.trajectory_id = absl::StrCat(tree_id, "/", i);
    r.lease_id = lease.lease_id;
    r.tree_id = tree_id;
    r.correct = i < correct;
    r.tree_generated_tokens = i == 0 ? kTreeTokens : 0;
    r.predicted = r.correct ? lease.spec.problem.answer : absl::StrCat("wrong", i);
    TrainSequence& s = r.sequence;
    s.group_id = tree_id;
    for (int j = 0; j < 4; ++j)
      s.prompt_tokens.push_back(static_cast<int32_t>(rng.UniformInt(3, vocab - 1)));
    const int64_t length = rng.UniformInt(3, 6);
    for (int64_t j = 0; j < length; ++j) {
      s.response_tokens.push_back(static_cast<int32_t>(rng.UniformInt(3, vocab - 1)));
      s.behavior_logprobs.push_back(-2.0f - 0.1f * static_cast<float>(j));
    }
    const float score = r.correct ? 1.0f : -1.0f;
    s.token_scores.assign(s.response_tokens.size(), score);
    s.final_score = score;
    s.weight_version = weight_version;
    out.push_back(std::move(r));
  }
  return out;
}

// Leases work from the learner and answers it at once. Returns the leases served.
inline std::vector<IssuedLease> ServeLeases(Learner& learner, int32_t max = 1000,
                                            int64_t weight_version = -1) {
  LeaseWorkResult work = learner.LeaseWork("fake-actor", max, absl::Now());
  IngestRequest request;
  request.actor_id = "fake-actor";
  for (const IssuedLease& lease : work.leases) {
    const int64_t version = weight_version >= 0 ? weight_version : learner.weight_version();
    for (TrajectoryRecord& r : AnswerLease(lease, version))
      request.trajectories.push_back(std::move(r));
    request.completed_lease_ids.push_back(lease.lease_id);
  }
  if (!work.leases.empty()) learner.Ingest(std::move(request));
  return work.leases;
}

inline std::vector<Problem> NumberedProblems(int n) {
  std::vector<Problem> problems;
  for (int i = 0; i < n; ++i) {
    Problem p;
    p.id = absl::StrCat("p", i);
    p.prompt = absl::StrCat("What is ", i, " + 1?");
    p.answer = std::to_string(i + 1);
    p.task = "addition";
    problems.push_back(std::move(p));
  }
  return problems;
}

}  // namespace deepsearch::testing_learner
