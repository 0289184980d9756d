#include "common/core/backoff.h"

#include <algorithm>

namespace deepsearch {

Backoff::Backoff(absl::Duration initial, absl::Duration max, uint64_t seed)
    : initial_(initial), max_(std::max(initial, max)), cap_(initial), rng_(seed) {}

absl::Duration Backoff::Next() {
  const absl::Duration delay = cap_ * rng_.Uniform();
  cap_ = std::min(cap_ * 2, max_);
  ++failures_;
  return delay;
}

void Backoff::Reset() {
  cap_ = initial_;
  failures_ = 0;
}

}  // namespace deepsearch
