#include "common/core/backoff.h"

#include <gtest/gtest.h>

namespace deepsearch {
namespace {

TEST(BackoffTest, GrowsToTheCapWithJitterAndResets) {
  Backoff b(absl::Milliseconds(100), absl::Milliseconds(800), 1);
  // Caps: 100, 200, 400, 800, 800, ...
  const absl::Duration caps[] = {absl::Milliseconds(100), absl::Milliseconds(200),
                                 absl::Milliseconds(400), absl::Milliseconds(800),
                                 absl::Milliseconds(800), absl::Milliseconds(800)};
  for (absl::Duration cap : caps) {
    const absl::Duration d = b.Next();
    EXPECT_GE(d, absl::ZeroDuration());
    EXPECT_LE(d, cap);
  }
  EXPECT_EQ(b.failures(), 6);
  // Jitter: many draws at the cap spread over [0, cap].
  absl::Duration lo = absl::InfiniteDuration(), hi = absl::ZeroDuration();
  for (int i = 0; i < 200; ++i) {
    const absl::Duration d = b.Next();
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_LT(lo, absl::Milliseconds(100));
  EXPECT_GT(hi, absl::Milliseconds(700));
  b.Reset();
  EXPECT_EQ(b.failures(), 0);
  EXPECT_LE(b.Next(), absl::Milliseconds(100));
}

}  // namespace
}  // namespace deepsearch
