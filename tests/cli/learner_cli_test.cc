// `deepsearch learner` and `deepsearch export` as a user runs them: a learner process serves,
// resumes from its state directory, and a checkpoint exports to a loadable model directory;
// bad input exits non-zero with a message naming what was wrong.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/cli/cli_runner.h"
#include "tests/free_port.h"

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

// The clients retry a learner that cannot be reached for --connect-timeout: a submission
// made before the learner is up goes through once it is (and makes one job), and a learner
// that never comes gives a clear failure after the timeout.
TEST(LearnerCliTest, ClientsRetryALearnerThatIsNotUpYet) {
  const std::string dir = Scratch("retry");
  ASSERT_EQ(RunDeepsearch("model init --preset tiny --out " + dir + "/model").exit_code, 0);
  ASSERT_EQ(
      RunDeepsearch("data gen --task addition --n 3 --seed 1 --out " + dir + "/p.jsonl").exit_code,
      0);
  const std::string nobody = "127.0.0.1:" + std::to_string(FreePort());
  // A problem set naming a task the registry does not make is refused before any call.
  {
    std::ofstream bad(dir + "/bad.jsonl");
    bad << R"({"prompt": "1+1=", "answer": "2", "task": "nosuchtask"})"
        << "\n";
  }
  CliRun run = RunDeepsearch("submit --learner " + nobody + " --problems " + dir + "/bad.jsonl");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("bad.jsonl: line 1: unknown task 'nosuchtask' (known: "));
  EXPECT_THAT(run.err, ::testing::Not(HasSubstr("unavailable")));
  run = RunDeepsearch("status --learner " + nobody + " --connect-timeout 1");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("deepsearch status: " + nobody + " unavailable ("));
  EXPECT_THAT(run.err, HasSubstr("retrying for up to 1s"));
  EXPECT_THAT(run.err, HasSubstr("(gRPC code 14)"));

  const std::string address = "127.0.0.1:" + std::to_string(FreePort());
  const pid_t submit = StartDeepsearch(
      {"submit", "--learner", address, "--problems", dir + "/p.jsonl", "--connect-timeout", "60"},
      dir + "/submit.log");
  ::usleep(1'500'000);  // the submission is retrying when the learner starts
  const pid_t learner = StartDeepsearch(
      {"learner", "--model", dir + "/model", "--state-dir", dir + "/state", "--listen", address},
      dir + "/learner.log");
  EXPECT_EQ(ExitCode(submit), 0) << ReadFile(dir + "/submit.log");
  EXPECT_THAT(ReadFile(dir + "/submit.log"), HasSubstr("unavailable"));
  EXPECT_THAT(ReadFile(dir + "/submit.log"), HasSubstr("job-000001"));
  run = RunDeepsearch("status --learner " + address);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(Lines(run.out).size(), 1u) << run.out;  // one job, though the call was retried
  ::kill(learner, SIGTERM);
  EXPECT_EQ(ExitCode(learner), 0);
}

// Two learner processes as one data-parallel learner: rank 1 has no model directory (it takes
// rank 0's model and state), rank 0 serves; a client submits a train job; SIGTERM to rank 0
// checkpoints the job and stops rank 1 too; the checkpoint exports to a model directory that
// loads and generates.
TEST(LearnerCliTest, DataParallelRanksServeCheckpointAndStopTogetherAndTheCheckpointExports) {
  const std::string dir = Scratch("data_parallel");
  ASSERT_EQ(RunDeepsearch("model init --preset tiny --out " + dir + "/model").exit_code, 0);
  ASSERT_EQ(RunDeepsearch("data gen --task addition --n 4 --seed 3 --out " + dir + "/train.jsonl")
                .exit_code,
            0);
  const std::string master = "127.0.0.1:" + std::to_string(FreePort());
  auto rank_args = [&](int rank) {
    return std::vector<std::string>{"--set", "learner.data_parallel.world_size=2",
                                    "--set", "learner.data_parallel.rank=" + std::to_string(rank),
                                    "--set", "learner.data_parallel.master=" + master,
                                    "--set", "learner.data_parallel.timeout=60s"};
  };
  std::vector<std::string> args1 = {"learner", "--state-dir", dir + "/state1", "--listen",
                                    "127.0.0.1:0"};
  for (const std::string& a : rank_args(1)) args1.push_back(a);
  const pid_t rank1 = StartDeepsearch(args1, dir + "/rank1.log");
  std::vector<std::string> args0 = {"learner",      "--model",  dir + "/model", "--state-dir",
                                    dir + "/state", "--listen", "127.0.0.1:0"};
  for (const std::string& a : rank_args(0)) args0.push_back(a);
  const pid_t rank0 = StartDeepsearch(args0, dir + "/rank0.log");

  const std::string log0 = WaitForLog(dir + "/rank0.log", "learner: serving on");
  const std::string serving = "learner: serving on ";
  const size_t at = log0.find(serving);
  ASSERT_NE(at, std::string::npos) << log0;
  const size_t begin = at + serving.size();
  const std::string address = log0.substr(begin, log0.find(' ', begin) - begin);
  EXPECT_THAT(log0, HasSubstr("data parallel over 2 ranks"));
  EXPECT_THAT(WaitForLog(dir + "/rank1.log", "ready at training step 0"),
              HasSubstr("data parallel rank 1 of 2 ready at training step 0"));

  // Rank 1 serves the gRPC health service only, so one probe fits every rank's pod.
  const std::string log1 = ReadFile(dir + "/rank1.log");
  const std::string health_only = "(health only) serving on 127.0.0.1:0 (port ";
  const size_t port_at = log1.find(health_only);
  ASSERT_NE(port_at, std::string::npos) << log1;
  const std::string rank1_port =
      log1.substr(port_at + health_only.size(),
                  log1.find(',', port_at + health_only.size()) - port_at - health_only.size());
  CliRun probe = RunDeepsearch("health 127.0.0.1:" + rank1_port);
  EXPECT_EQ(probe.exit_code, 0) << probe.err;
  EXPECT_THAT(probe.out, HasSubstr("SERVING"));
  probe = RunDeepsearch("health " + address + " --service deepsearch.v1.ProblemService");
  EXPECT_EQ(probe.exit_code, 0) << probe.err;
  probe =
      RunDeepsearch("health 127.0.0.1:" + rank1_port + " --service deepsearch.v1.ProblemService");
  EXPECT_EQ(probe.exit_code, 1);
  EXPECT_THAT(probe.err, HasSubstr("deepsearch health: 127.0.0.1:" + rank1_port));
  probe = RunDeepsearch("health 127.0.0.1:" + std::to_string(FreePort()) + " --timeout 1");
  EXPECT_EQ(probe.exit_code, 1);
  EXPECT_THAT(probe.err, HasSubstr("gRPC code"));

  const CliRun submit = RunDeepsearch("submit --learner " + address + " --kind train --problems " +
                                      dir + "/train.jsonl --max-steps 5");
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  EXPECT_THAT(WaitForLog(dir + "/rank0.log", "training job"), HasSubstr("training job job-"));

  ASSERT_EQ(::kill(rank0, SIGTERM), 0);
  EXPECT_EQ(ExitCode(rank0), 0) << ReadFile(dir + "/rank0.log");
  EXPECT_EQ(ExitCode(rank1), 0) << ReadFile(dir + "/rank1.log");
  EXPECT_THAT(ReadFile(dir + "/rank1.log"), HasSubstr("rank 0 stopped the run"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/state1/checkpoints/LATEST"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/state/checkpoints/LATEST"));

  // The checkpoint as a Hugging Face model directory, in bfloat16.
  CliRun run = RunDeepsearch("export --state-dir " + dir + "/state --out " + dir +
                             "/exported --dtype bfloat16");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  for (const char* file :
       {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"}) {
    EXPECT_TRUE(std::filesystem::exists(dir + "/exported/" + file)) << file;
  }
  EXPECT_THAT(ReadFile(dir + "/exported/config.json"), HasSubstr("\"torch_dtype\": \"bfloat16\""));
  run = RunDeepsearch("generate --model " + dir +
                      "/exported --prompt '<bos>12+34=' --max-tokens 4 --seed 1 --json");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("\"text\""));
}

}  // namespace
}  // namespace deepsearch::testing
