// `deepsearch run` end to end, as a user runs it, shrunk to seconds: a tiny model warm-started
// on two-number Countdown, then the cache service, the learner and an actor as separate
// processes on 127.0.0.1 (real gRPC on real ports), a TRAIN job and held-out SOLVE jobs
// submitted by the run's own gRPC client. The run is interrupted with SIGINT once training
// has begun (every process must stop, the exit code is 130), then run again: it resumes the
// same job and finishes. Checked: trajectories flow, weight versions advance, the cache
// fills with verified solutions, every submitted problem set completes, the final model loads.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/cli/cli_runner.h"

namespace deepsearch::testing {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

// The last line of progress.jsonl, parsed (null when there is none).
Json LastSample(const std::string& dir) {
  const std::vector<std::string> lines = Lines(ReadFile(dir + "/metrics/progress.jsonl"));
  if (lines.empty()) return Json();
  return Json::parse(lines.back(), nullptr, /*allow_exceptions=*/false);
}

// Processes whose command line names `dir` (the run's services), other than this test.
int ProcessesUsing(const std::string& dir) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string pid = entry.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = ReadFile(entry.path().string() + "/cmdline");
    for (char& c : cmdline) c = c == '\0' ? ' ' : c;
    if (cmdline.find("deepsearch") != std::string::npos && cmdline.find(dir) != std::string::npos) {
      ++count;
    }
  }
  return count;
}

TEST(RunCliTest, TrainsEndToEndOnLoopbackStopsOnSigintAndResumes) {
  const std::string dir = ::testing::TempDir() + "/deepsearch_run_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  const std::vector<std::string> args = {
      "run", "--dir", dir,
      // Two-number Countdown: a 150-step warm start already answers half of it, so trees find
      // correct answers and the cache fills; every problem stays in training (no screening).
      "--set", "run.task=countdown:n=2", "--set", "run.sft_steps=150", "--set", "run.sft_batch=32",
      "--set", "run.train_problems=24", "--set", "run.heldout_problems=12", "--set",
      "run.eval_every=2", "--set", "run.eval_samples=4", "--set", "run.eval_direct_samples=6",
      "--set", "run.status_interval=1s", "--set", "learner.program.screen=false", "--set",
      "learner.program.batch_problems=4", "--set", "learner.program.max_steps=6", "--set",
      "learner.checkpoint_every=1", "--set", "search.max_depth=4", "--set", "search.step_tokens=6",
      "--set", "search.max_response_tokens=24", "--set", "search.overlong_buffer=4"};
  std::string command = DEEPSEARCH_CLI_PATH;
  std::vector<char*> argv = {command.data()};
  std::vector<std::string> owned = args;
  for (std::string& a : owned) argv.push_back(a.data());
  argv.push_back(nullptr);

  // First run: interrupted once a training step has been taken.
  const std::string log1 = dir + ".first.log";
  const pid_t first = ::fork();
  ASSERT_GE(first, 0);
  if (first == 0) {
    std::freopen(log1.c_str(), "w", stderr);
    std::freopen((log1 + ".out").c_str(), "w", stdout);
    ::execv(command.c_str(), argv.data());
    ::_exit(127);
  }
  bool training = false;
  for (int i = 0; i < 1200 && !training; ++i) {  // up to 2 minutes
    ::usleep(100'000);
    const Json sample = LastSample(dir);
    training = sample.is_object() && sample.value("step", 0) >= 1;
  }
  ASSERT_TRUE(training) << ReadFile(log1);
  ASSERT_EQ(::kill(first, SIGINT), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(first, &status, 0), first);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130) << ReadFile(log1);
  EXPECT_THAT(ReadFile(log1), HasSubstr("run the same command again to resume"));
  EXPECT_EQ(ProcessesUsing(dir), 0) << "services still running after the interrupt";
  EXPECT_FALSE(std::filesystem::exists(dir + "/final-model"));

  // Second run: resumes (no second warm start, the same job) and finishes.
  std::string joined;
  for (const std::string& a : args) joined += " '" + a + "'";
  const CliRun second = RunDeepsearch(joined.substr(1));
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_THAT(second.err, ::testing::Not(HasSubstr("[run] warm start")));
  EXPECT_THAT(second.err, HasSubstr("training job job-000001"));
  EXPECT_THAT(second.out, HasSubstr("deepsearch run: done"));
  EXPECT_EQ(ProcessesUsing(dir), 0);

  // Trajectories flowed, the weights moved on, the cache filled.
  const Json last = LastSample(dir);
  ASSERT_TRUE(last.is_object());
  EXPECT_EQ(last.value("step", 0), 6);
  EXPECT_GE(last.value("weight_version", 0), 7);  // 1 initial + 6 steps
  EXPECT_GT(last.value("trajectories", 0), 6 * 4 * 8 / 2);
  EXPECT_GT(last.value("generated_tokens", 0), 0);
  EXPECT_GT(last.value("trained_tokens", 0), 0);
  EXPECT_EQ(last.value("screening_tokens", -1), 0);  // screening is off
  EXPECT_GT(last.value("cache_solutions", 0), 0) << "no verified solution reached the cache";
  // Every held-out SOLVE job completed: steps 0, 2, 4 and 6, each with 6 direct samples per
  // problem (the headline) and a tree of 4 leaves.
  const std::vector<std::string> eval = Lines(ReadFile(dir + "/metrics/eval.csv"));
  ASSERT_EQ(eval.size(), 9u) << ReadFile(dir + "/metrics/eval.csv");
  EXPECT_THAT(eval[0], HasSubstr("step,generated_tokens,screening_tokens,trained_tokens"));
  for (size_t i = 1; i < eval.size(); ++i) {
    EXPECT_EQ(eval[i].substr(0, eval[i].find(',')), std::to_string(2 * ((i - 1) / 2)));
    EXPECT_THAT(eval[i], HasSubstr(i % 2 == 1 ? ",direct-t1.0,1.00,12,72," : ",tree,1.00,12,48,"));
  }
  // The pass@k curves: k = 1, 2, 4, 6 of the direct samples, 1, 2, 4 of the leaves.
  const std::vector<std::string> curve = Lines(ReadFile(dir + "/metrics/eval_pass_at_k.csv"));
  EXPECT_EQ(curve.size(), 1u + 4 * (4 + 3)) << ReadFile(dir + "/metrics/eval_pass_at_k.csv");
  const std::string summary = ReadFile(dir + "/summary.txt");
  EXPECT_THAT(summary,
              HasSubstr("held-out direct sampling, T = 1.0 (12 problems, 6 samples each)"));
  EXPECT_THAT(summary, HasSubstr("held-out search trees (secondary) (12 problems, 4 leaves each)"));
  EXPECT_THAT(summary, HasSubstr(" generated by the training job ("));
  EXPECT_TRUE(std::filesystem::exists(dir + "/heldout_accuracy.png"));
  // Every service served its Prometheus endpoint.
  EXPECT_THAT(second.err, HasSubstr("[run] metrics: cache http://127.0.0.1:"));
  for (const char* service : {"cache", "learner", "actor-0"}) {
    EXPECT_THAT(ReadFile(dir + "/logs/" + service + ".log"), HasSubstr("/metrics")) << service;
  }
  // The final model is a model directory that generates.
  const CliRun generate = RunDeepsearch(
      "generate --model " + dir + "/final-model --prompt 'Use 3 4 to make 7.' --max-tokens 4");
  EXPECT_EQ(generate.exit_code, 0) << generate.err;
  std::filesystem::remove_all(dir);
  std::filesystem::remove(log1);
  std::filesystem::remove(log1 + ".out");
}

// The pid of the run's service whose command line holds `marker` (0: none).
pid_t ServicePid(const std::string& dir, const std::string& marker) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string pid = entry.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = ReadFile(entry.path().string() + "/cmdline");
    for (char& c : cmdline) c = c == '\0' ? ' ' : c;
    if (cmdline.find(dir) != std::string::npos && cmdline.find(marker) != std::string::npos)
      return static_cast<pid_t>(std::stol(pid));
  }
  return 0;
}

// A service that dies is started again: an actor killed with SIGKILL rejoins (its leases
// expire and are re-issued), the learner killed with SIGKILL resumes from its checkpoint; the
// run completes with exit code 0 and says what it restarted.
TEST(RunCliTest, DeadServicesAreRestartedAndTheRunCompletes) {
  const std::string dir =
      ::testing::TempDir() + "/deepsearch_run_restart_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::vector<std::string> args = {
      DEEPSEARCH_CLI_PATH, "run", "--dir", dir, "--actors", "2",
      // No warm start: a random model trains on two-number Countdown for 12 steps.
      "--set", "run.task=countdown:n=2", "--set", "run.sft_steps=0", "--set",
      "run.train_problems=8", "--set", "run.heldout_problems=4", "--set", "run.eval_every=100",
      "--set", "run.eval_samples=2", "--set", "run.eval_direct_samples=2", "--set",
      "run.status_interval=200ms", "--set", "learner.program.screen=false", "--set",
      "learner.program.batch_problems=2", "--set", "learner.program.trajectories=4", "--set",
      "learner.program.max_steps=12", "--set", "learner.checkpoint_every=2", "--set",
      "learner.lease_duration=4s", "--set", "actor.renew_interval=1s", "--set",
      "search.max_depth=3", "--set", "search.step_tokens=6", "--set",
      "search.max_response_tokens=18", "--set", "search.overlong_buffer=4"};
  const std::string log = dir + ".log";
  const pid_t run = StartDeepsearch(std::vector<std::string>(args.begin() + 1, args.end()), log);
  auto step = [&] {
    const Json sample = LastSample(dir);
    return sample.is_object() ? sample.value("step", 0) : 0;
  };
  auto wait_for_step = [&](int n) {
    for (int i = 0; i < 1200 && step() < n; ++i) ::usleep(100'000);
    return step() >= n;
  };
  ASSERT_TRUE(wait_for_step(2)) << ReadFile(log);
  const pid_t actor = ServicePid(dir, "--actor-id actor-1");
  ASSERT_GT(actor, 0);
  ASSERT_EQ(::kill(actor, SIGKILL), 0);
  // Well before the last step (12), so the job is still running when the learner dies.
  ASSERT_TRUE(wait_for_step(4)) << ReadFile(log);
  const pid_t learner = ServicePid(dir, "learner --config");
  ASSERT_GT(learner, 0);
  ASSERT_EQ(::kill(learner, SIGKILL), 0);
  EXPECT_EQ(ExitCode(run), 0) << ReadFile(log);
  const std::string out = ReadFile(log);
  EXPECT_THAT(out, HasSubstr("[run] the actor-1 exited with status 137 (signal 9); restarting it "
                             "(restart 1 of 3"));
  EXPECT_THAT(out, HasSubstr("[run] the learner exited with status 137 (signal 9); restarting it "
                             "(restart 1 of 3"));
  EXPECT_THAT(out, HasSubstr("deepsearch run: done"));
  EXPECT_THAT(out, HasSubstr("training: 12 steps"));
  EXPECT_THAT(ReadFile(dir + "/logs/learner.log"), HasSubstr("learner: resumed from"));
  EXPECT_EQ(ProcessesUsing(dir), 0);
  std::filesystem::remove_all(dir);
  std::filesystem::remove(log);
}

TEST(RunCliTest, WarmStartOnlyWritesTheSetsAndTheModelAndStartsNoService) {
  const std::string dir = ::testing::TempDir() + "/deepsearch_warm_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  const std::string sets =
      " --set run.task=countdown:n=2 --set run.sft_steps=5 --set run.sft_batch=8"
      " --set run.train_problems=10 --set run.heldout_problems=6";
  const CliRun warm = RunDeepsearch("run --warm-start-only --dir " + dir + sets);
  ASSERT_EQ(warm.exit_code, 0) << warm.err;
  EXPECT_THAT(warm.out, HasSubstr("warm-started model in " + dir + "/sft-model"));
  EXPECT_EQ(Lines(ReadFile(dir + "/data/train.jsonl")).size(), 10u);
  EXPECT_EQ(Lines(ReadFile(dir + "/data/heldout.jsonl")).size(), 6u);
  EXPECT_TRUE(std::filesystem::exists(dir + "/sft-model/config.json"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/logs/learner.log"));
  EXPECT_EQ(ProcessesUsing(dir), 0);
  // Again: everything is there already, nothing is redone.
  const CliRun again = RunDeepsearch("run --warm-start-only --dir " + dir + sets);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.err, ::testing::Not(HasSubstr("[run] warm start")));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace deepsearch::testing
