#include "common/core/logging.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace deepsearch {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

TEST(LoggingTest, ParsesLevels) {
  EXPECT_EQ(*ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_EQ(*ParseLogLevel("INFO"), LogLevel::kInfo);
  EXPECT_EQ(*ParseLogLevel("warn"), LogLevel::kWarning);
  EXPECT_EQ(*ParseLogLevel("warning"), LogLevel::kWarning);
  EXPECT_EQ(*ParseLogLevel("error"), LogLevel::kError);
  EXPECT_EQ(*ParseLogLevel("off"), LogLevel::kOff);
  absl::StatusOr<LogLevel> bad = ParseLogLevel("loud");
  EXPECT_EQ(bad.status().message(),
            "unknown log level 'loud' (expected debug, info, warning, error or off)");
  EXPECT_EQ(LogLevelName(LogLevel::kWarning), "warning");
}

TEST(LoggingTest, FormatsLinesAndFiltersByLevel) {
  InitLogging("unit", LogLevel::kInfo);
  ::testing::internal::CaptureStderr();
  log::Info("lease {} expired after {:.1f}s", 7, 30.0);
  log::Debug("hidden {}", 1);
  log::Warning("shown");
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(err, MatchesRegex(
                       "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+ I unit\\] lease 7 expired after 30.0s\n"
                       "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+ W unit\\] shown\n"));
  SetLogLevel(LogLevel::kError);
  ::testing::internal::CaptureStderr();
  log::Warning("filtered");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  SetLogLevel(LogLevel::kInfo);
}

TEST(LoggingDeathTest, CheckFailureNamesConditionAndContext) {
  const int depth = 65;
  EXPECT_DEATH(DS_CHECK(depth <= 64) << "depth " << depth,
               "Check failed at .*logging_test.cc:[0-9]+: depth <= 64 depth 65");
  EXPECT_DEATH(DS_CHECK_OK(absl::InternalError("boom")),
               "absl::InternalError\\(\"boom\"\\) is OK INTERNAL: boom");
}

TEST(LoggingTest, PassingChecksDoNothing) {
  int evaluated = 0;
  DS_CHECK(++evaluated == 1) << "never printed";
  DS_CHECK_OK(absl::OkStatus());
  EXPECT_EQ(evaluated, 1);
}

}  // namespace
}  // namespace deepsearch
