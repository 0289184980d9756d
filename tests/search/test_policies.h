// Policies for tests of the search and the actor, beside search/mock_policy.h.
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "search/policy.h"

namespace deepsearch {

// Holds every request until the test answers it (the oldest first).
class HoldingPolicy final : public Policy {
 public:
  void Submit(ExpansionRequest request, ExpansionCallback done) override {
    absl::MutexLock lock(&mu_);
    pending_.push_back({std::move(request), std::move(done)});
  }
  void ReleaseHandle(int64_t handle) override {
    absl::MutexLock lock(&mu_);
    released_.push_back(handle);
  }
  int64_t weight_version() const override { return 1; }
  size_t pending() const {
    absl::MutexLock lock(&mu_);
    return pending_.size();
  }
  // Answers the oldest request with `samples` (each given a fresh handle).
  void Answer(std::vector<PolicySample> samples, absl::Status status = absl::OkStatus()) {
    std::pair<ExpansionRequest, ExpansionCallback> p;
    {
      absl::MutexLock lock(&mu_);
      p = std::move(pending_.front());
      pending_.erase(pending_.begin());
      for (PolicySample& s : samples) s.handle = next_handle_++;
    }
    ExpansionResult r;
    r.status = std::move(status);
    r.samples = std::move(samples);
    p.second(std::move(r));
  }
  std::vector<int64_t> released() const {
    absl::MutexLock lock(&mu_);
    return released_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::pair<ExpansionRequest, ExpansionCallback>> pending_;
  std::vector<int64_t> released_;
  int64_t next_handle_ = 100;
};

// Polls `ready` every millisecond for up to `timeout`; returns its last value.
inline bool WaitFor(const std::function<bool()>& ready,
                    absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!ready()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

}  // namespace deepsearch
