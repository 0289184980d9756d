// `deepsearch learner` and `deepsearch export` as a user runs them: a learner process serves,
// resumes from its state directory, and a checkpoint exports to a loadable model directory;
// bad input exits non-zero with a message naming what was wrong.
#include <signal.h>
#include <unistd.h>

#include <filesystem>

#include <sys/wait.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/cli/cli_runner.h"

namespace deepsearch::testing {
namespace {

using ::testing::HasSubstr;

std::string Scratch(const std::string& name) {
  const std::string dir =
      ::testing::TempDir() + "/learner_cli_" + std::to_string(::getpid()) + "_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(LearnerCliTest, ExportNeedsACheckpoint) {
  const std::string dir = Scratch("export");
  CliRun run = RunDeepsearch("export --state-dir " + dir + "/state --out " + dir + "/out");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("no checkpoint in " + dir + "/state"));
  run = RunDeepsearch("export --out " + dir + "/out");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("--checkpoint or --state-dir"));
  run = RunDeepsearch("export --checkpoint " + dir + "/missing --out " + dir + "/out");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr(dir + "/missing/model"));
}

TEST(LearnerCliTest, LearnerRefusesAMissingModelAndABadMode) {
  const std::string dir = Scratch("bad");
  CliRun run = RunDeepsearch("learner --state-dir " + dir + "/state --model " + dir +
                             "/nowhere --listen 127.0.0.1:0");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr(dir + "/nowhere"));
  run = RunDeepsearch("learner --state-dir " + dir + "/state --mode fast");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("learner.mode"));
}

TEST(LearnerCliTest, LearnerServesUntilSigtermThenExitsCleanly) {
  const std::string dir = Scratch("serve");
  ASSERT_EQ(RunDeepsearch("model init --preset tiny --out " + dir + "/model").exit_code, 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string log = dir + "/learner.log";
    FILE* f = std::freopen(log.c_str(), "w", stderr);
    (void)f;
    ::execl(DEEPSEARCH_CLI_PATH, DEEPSEARCH_CLI_PATH, "learner", "--model",
            (dir + "/model").c_str(), "--state-dir", (dir + "/state").c_str(), "--listen",
            "127.0.0.1:0", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait for the serving line, then stop it.
  std::string log;
  for (int i = 0; i < 600 && log.find("serving on") == std::string::npos; ++i) {
    ::usleep(50'000);
    log = ReadFile(dir + "/learner.log");
  }
  EXPECT_THAT(log, HasSubstr("serving on 127.0.0.1:"));
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << ReadFile(dir + "/learner.log");
  EXPECT_TRUE(std::filesystem::is_directory(dir + "/state/jobs"));
}

}  // namespace
}  // namespace deepsearch::testing
