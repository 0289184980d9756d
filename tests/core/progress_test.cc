#include "common/core/progress.h"

#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace deepsearch {
namespace {

using ::testing::HasSubstr;

// A clock the test moves by hand.
struct FakeClock {
  absl::Time now = absl::FromUnixSeconds(1000);
  std::function<absl::Time()> fn() {
    return [this] { return now; };
  }
};

TEST(ProgressTest, FormatsShortDurations) {
  EXPECT_EQ(FormatDurationShort(absl::Milliseconds(400)), "0.4s");
  EXPECT_EQ(FormatDurationShort(absl::Seconds(12)), "12s");
  EXPECT_EQ(FormatDurationShort(absl::Seconds(187)), "3m07s");
  EXPECT_EQ(FormatDurationShort(absl::Seconds(3720)), "1h02m");
  EXPECT_EQ(FormatDurationShort(absl::Seconds(-5)), "0.0s");
}

TEST(ProgressTest, PlainLinesWithRateEtaAndStatus) {
  FakeClock clock;
  std::ostringstream out;
  ProgressReporter p({.label = "sft",
                      .total = 100,
                      .unit = "step",
                      .interval = absl::Seconds(10),
                      .out = &out,
                      .tty = false,
                      .clock = clock.fn()});
  clock.now += absl::Seconds(5);
  p.Add(20);  // not due yet
  EXPECT_EQ(out.str(), "");
  clock.now += absl::Seconds(5);
  p.SetStatus("loss=0.312");
  p.Add(30);  // 50 done after 10 s: 5 step/s, 50 left -> ETA 10 s
  EXPECT_EQ(out.str(), "[sft] 50/100  50.0% 5.00 step/s ETA 10s elapsed 10s | loss=0.312\n");
  clock.now += absl::Seconds(10);
  p.Add(10);  // 60 done; rate over the window since the start: 3 step/s
  EXPECT_THAT(out.str(),
              HasSubstr("[sft] 60/100  60.0% 3.00 step/s ETA 13s elapsed 20s | loss=0.312\n"));
  clock.now += absl::Seconds(20);
  p.Update(100);
  p.Finish();
  p.Finish();  // once only
  EXPECT_THAT(out.str(), HasSubstr("[sft] 100/100 100.0% 2.50 step/s, done in 40s | loss=0.312\n"));
  const std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 4);
}

TEST(ProgressTest, RateFollowsTheWindow) {
  FakeClock clock;
  std::ostringstream out;
  ProgressReporter p({.label = "gen",
                      .total = 0,
                      .unit = "tok",
                      .interval = absl::Seconds(1),
                      .rate_window = absl::Seconds(10),
                      .out = &out,
                      .tty = false,
                      .clock = clock.fn()});
  // 100 tok/s for 30 s, then 10 tok/s: after 10 more seconds the rate shows the new speed.
  for (int i = 0; i < 30; ++i) {
    clock.now += absl::Seconds(1);
    p.Add(100);
  }
  for (int i = 0; i < 12; ++i) {
    clock.now += absl::Seconds(1);
    p.Add(10);
  }
  EXPECT_THAT(p.Line(), HasSubstr("[gen] 3120 tok 10.0 tok/s"));
  EXPECT_THAT(p.Line(), ::testing::Not(HasSubstr("ETA")));  // unknown total
}

TEST(ProgressTest, TerminalRedrawsOneLineWithABar) {
  FakeClock clock;
  std::ostringstream out;
  ProgressReporter p({.label = "rl",
                      .total = 10,
                      .interval = absl::Seconds(1),
                      .out = &out,
                      .tty = true,
                      .clock = clock.fn()});
  clock.now += absl::Seconds(2);
  p.Add(5);
  EXPECT_EQ(out.str(),
            "\r[rl] 5/10  50.0% [##########..........] 2.50 it/s ETA 2.0s elapsed 2.0s\x1b[K");
  p.Finish();
  EXPECT_THAT(
      out.str(),
      HasSubstr("\r[rl] 5/10  50.0% [##########..........] 2.50 it/s, done in 2.0s\x1b[K\n"));
}

}  // namespace
}  // namespace deepsearch
