// A deterministic Policy for tests of the search: samples come from a script, a function of
// the prefix, the sample's index and the request. No model, no threads: Submit runs the
// script on the caller's thread and calls `done` before returning.
//
// It keeps the Policy contract the search relies on: handles name prefix + sample tokens and
// resolve in later requests, samples are cut at max_new_tokens (finish kLength), unknown
// handles fail with NOT_FOUND, and every request is recorded for assertions.
#pragma once

#include <map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "search/policy.h"

namespace deepsearch {

class MockPolicy final : public Policy {
 public:
  // Returns sample `index` for `prefix`; tokens beyond max_new_tokens are cut by the mock.
  using Script = std::function<PolicySample(absl::Span<const int32_t> prefix, int32_t index,
                                            const ExpansionRequest& request)>;

  explicit MockPolicy(Script script, int64_t weight_version = 1);

  void Submit(ExpansionRequest request, ExpansionCallback done) override;
  void ReleaseHandle(int64_t handle) override;
  int64_t weight_version() const override { return weight_version_; }

  // Every request submitted so far (handles resolved into `tokens`), in order.
  std::vector<ExpansionRequest> requests() const;
  int64_t live_handles() const;

 private:
  const Script script_;
  const int64_t weight_version_;
  mutable absl::Mutex mu_;
  std::map<int64_t, std::vector<int32_t>> handles_ ABSL_GUARDED_BY(mu_);
  int64_t next_handle_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<ExpansionRequest> requests_ ABSL_GUARDED_BY(mu_);
};

}  // namespace deepsearch
