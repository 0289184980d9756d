// Retry delays for talking to peers that may be down: exponential growth from `initial` to
// `max`, with "full jitter" (each delay uniform in [0, the current cap]) so that many actors
// retrying after one learner restart do not reconnect in lock step.
//
//   Backoff backoff(absl::Milliseconds(100), absl::Seconds(10), /*seed=*/actor_hash);
//   while (!(status = Call()).ok()) sleep(backoff.Next());
//   backoff.Reset();  // after a success
//
// Thread-compatible.
#pragma once

#include <cstdint>

#include "absl/time/time.h"

#include "common/core/rng.h"

namespace deepsearch {

class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max, uint64_t seed);

  // The next delay: uniform in [0, cap], after which the cap doubles (up to max).
  absl::Duration Next();
  // Back to the initial cap.
  void Reset();
  // Failures since the last Reset.
  int64_t failures() const { return failures_; }

 private:
  absl::Duration initial_;
  absl::Duration max_;
  absl::Duration cap_;
  Rng rng_;
  int64_t failures_ = 0;
};

}  // namespace deepsearch
