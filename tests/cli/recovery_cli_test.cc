// The services as separate processes on 127.0.0.1 (`deepsearch cache`, `deepsearch learner`,
// `deepsearch actor`, each started by hand as a deployment would), a small TRAIN job, and
// one peer killed while the job runs. Each case checks that the job still completes, or ends
// with a message naming what could not be reached; none may leave the job waiting forever.
//
//   the cache service killed (SIGKILL) mid-job and restarted on its store: the learner's
//     publish fails meanwhile, then goes out, and training goes on;
//   the same outage ending in a restart of the learner (SIGTERM while it waits);
//   the learner killed (SIGKILL) after versions it has no checkpoint of: it numbers its
//     weights after the cache's newest, and the actor (kept running through the restart)
//     follows the new versions;
//   an actor killed (SIGKILL) and another started: its leases expire and are re-issued;
//   a data-parallel rank killed (SIGKILL): rank 0 exits 1 naming the broken group.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/cli/cli_runner.h"
#include "tests/free_port.h"

namespace deepsearch::testing {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

// Small enough for seconds per step on two cores: the tiny model, 2 problems of 4 leaves a
// step, short trees; leases expire within seconds once their actor is gone.
constexpr char kConfig[] = R"(search:
  max_depth: 3
  step_tokens: 6
  max_response_tokens: 18
  overlong_buffer: 4
actor:
  renew_interval: 1s
  idle_poll: 100ms
  backoff_initial: 50ms
  backoff_max: 500ms
  rpc_timeout: 5s
  status_interval: 2s
learner:
  lease_duration: 4s
  retry_after: 100ms
  publish_attempts: 2
  publish_timeout: 10s
  keep_checkpoints: 3
  program:
    screen: false
    batch_problems: 2
    trajectories: 4
    steps_per_round: 100
  train:
    warmup_steps: 0
    mini_batches: 1
)";  // each test appends its own learner keys

// A JSON integer that proto3's JSON mapping may print as a string (int64).
int64_t Int(const Json& j, const std::string& key) {
  if (!j.is_object() || !j.contains(key)) return 0;
  const Json& v = j.at(key);
  if (v.is_string()) return std::stoll(v.get<std::string>());
  return v.is_number() ? v.get<int64_t>() : 0;
}

class System {
 public:
  explicit System(const std::string& name, const std::string& extra_config = "")
      : dir_(::testing::TempDir() + "/recovery_" + std::to_string(::getpid()) + "_" + name),
        cache_address_("127.0.0.1:" + std::to_string(FreePort())),
        learner_address_("127.0.0.1:" + std::to_string(FreePort())) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    {
      std::ofstream config(dir_ + "/config.yaml");
      config << kConfig << extra_config;
    }
    EXPECT_EQ(RunDeepsearch("model init --preset tiny --seed 3 --out " + dir_ + "/model").exit_code,
              0);
    EXPECT_EQ(
        RunDeepsearch("data gen --task addition --n 8 --seed 3 --out " + dir_ + "/train.jsonl")
            .exit_code,
        0);
  }
  ~System() {
    for (auto& [name, pid] : running_) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }

  const std::string& dir() const { return dir_; }
  const std::string& learner_address() const { return learner_address_; }

  void StartCache() {
    Start("cache", {"cache", "--config", dir_ + "/config.yaml", "--listen", cache_address_,
                    "--store-dir", dir_ + "/store"});
    EXPECT_THAT(WaitForLog(LogOf("cache"), "serving on"), HasSubstr("serving on"));
  }
  void StartLearner(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"learner",       "--config",      dir_ + "/config.yaml",
                                     "--model",       dir_ + "/model", "--state-dir",
                                     dir_ + "/state", "--listen",      learner_address_,
                                     "--cache",       cache_address_};
    args.insert(args.end(), extra.begin(), extra.end());
    Start("learner", args);
    EXPECT_THAT(WaitForLog(LogOf("learner"), "learner: serving on", 60),
                HasSubstr("learner: serving on"));
  }
  void StartActor(const std::string& id) {
    Start(id, {"actor", "--config", dir_ + "/config.yaml", "--model", dir_ + "/model", "--learner",
               learner_address_, "--cache", cache_address_, "--actor-id", id});
  }

  // Sends `signal` to a service and reaps it; returns its exit status.
  int Stop(const std::string& name, int signal) {
    auto it = running_.find(name);
    if (it == running_.end()) return -1;
    ::kill(it->second, signal);
    const int status = ExitCode(it->second);
    running_.erase(it);
    return status;
  }
  // Waits (at most `seconds`) for a service to exit by itself; -1 if it still runs.
  int WaitForExit(const std::string& name, int seconds) {
    auto it = running_.find(name);
    if (it == running_.end()) return -1;
    for (int i = 0; i < seconds * 10; ++i) {
      int status = 0;
      if (::waitpid(it->second, &status, WNOHANG) == it->second) {
        running_.erase(it);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      ::usleep(100'000);
    }
    return -1;
  }

  // Every incarnation's log of a service, in order.
  std::string Log(const std::string& name) const {
    std::string all;
    const int n = incarnations_.count(name) > 0 ? incarnations_.at(name) : 0;
    for (int i = 1; i <= n; ++i) all += ReadFile(LogPath(name, i));
    return all;
  }
  std::string LogOf(const std::string& name) const {
    return LogPath(name, incarnations_.count(name) ? incarnations_.at(name) : 0);
  }

  std::string SubmitTrain(int max_steps) {
    const CliRun run =
        RunDeepsearch("submit --learner " + learner_address_ + " --kind train --problems " + dir_ +
                      "/train.jsonl --max-steps " + std::to_string(max_steps));
    EXPECT_EQ(run.exit_code, 0) << run.err;
    std::string id = run.out;
    while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
    return id;
  }
  // The job as `deepsearch status --json` prints it; null when the learner did not answer.
  Json Job(const std::string& id) const {
    const CliRun run = RunDeepsearch("status --learner " + learner_address_ + " " + id +
                                     " --json --connect-timeout 0");
    if (run.exit_code != 0) return Json();
    return Json::parse(run.out, nullptr, /*allow_exceptions=*/false);
  }
  // Polls the job until `done(job)` (or `seconds` pass); returns the last answer.
  Json WaitForJob(const std::string& id, const std::function<bool(const Json&)>& done,
                  int seconds) const {
    Json job;
    for (int i = 0; i < seconds * 4; ++i) {
      Json now = Job(id);
      if (!now.is_null()) job = now;
      if (!job.is_null() && done(job)) return job;
      ::usleep(250'000);
    }
    return job;
  }
  // The cache service, the learner and one actor, actor-1.
  void StartAll() {
    StartCache();
    StartLearner();
    StartActor("actor-1");
  }
  // Waits for the job to have trained `steps` steps; true when it has and still runs (the
  // moment a test kills a peer). last_job() is what it saw.
  bool TrainingAt(const std::string& id, int64_t steps) {
    last_job_ = WaitForJob(
        id, [&](const Json& j) { return Steps(j) >= steps; }, 120);
    EXPECT_GE(Steps(last_job_), steps) << last_job_.dump() << "\n" << Log("learner");
    EXPECT_EQ(State(last_job_), "JOB_STATE_RUNNING") << "the job ended before the kill";
    return Steps(last_job_) >= steps && State(last_job_) == "JOB_STATE_RUNNING";
  }
  const Json& last_job() const { return last_job_; }
  static int64_t Steps(const Json& job) {
    return job.is_object() && job.contains("progress") ? Int(job["progress"], "training_steps") : 0;
  }
  static int64_t Version(const Json& job) {
    return job.is_object() && job.contains("progress") ? Int(job["progress"], "weight_version") : 0;
  }
  static std::string State(const Json& job) {
    return job.is_object() ? job.value("state", std::string()) : std::string();
  }
  // Waits for the job to end; expects it to succeed with `steps` training steps.
  Json ExpectCompletes(const std::string& id, int64_t steps, int seconds = 180) {
    const Json job = WaitForJob(
        id,
        [](const Json& j) {
          return State(j) != "JOB_STATE_RUNNING" && State(j) != "JOB_STATE_PENDING" &&
                 !State(j).empty();
        },
        seconds);
    EXPECT_EQ(State(job), "JOB_STATE_SUCCEEDED")
        << job.dump() << "\nlearner log:\n"
        << Log("learner").substr(Log("learner").size() > 6000 ? Log("learner").size() - 6000 : 0);
    EXPECT_EQ(Steps(job), steps) << job.dump();
    return job;
  }

 private:
  std::string LogPath(const std::string& name, int incarnation) const {
    return dir_ + "/" + name + "." + std::to_string(incarnation) + ".log";
  }
  void Start(const std::string& name, const std::vector<std::string>& args) {
    const int n = ++incarnations_[name];
    running_[name] = StartDeepsearch(args, LogPath(name, n));
  }

  std::string dir_;
  std::string cache_address_;
  std::string learner_address_;
  std::map<std::string, pid_t> running_;
  std::map<std::string, int> incarnations_;
  Json last_job_;
};

TEST(RecoveryCliTest, TheCacheServiceKilledMidJobComesBackAndTheJobCompletes) {
  System system("cache_kill", "  checkpoint_every: 1\n");
  system.StartAll();
  const std::string job = system.SubmitTrain(30);  // steps take ~0.1 s: the kill comes mid-job
  ASSERT_TRUE(system.TrainingAt(job, 2));

  EXPECT_EQ(system.Stop("cache", SIGKILL), 128 + SIGKILL);
  // The next step's version cannot go out; no lease is issued meanwhile.
  EXPECT_THAT(WaitForLog(system.LogOf("learner"), "cannot publish weight version", 60),
              HasSubstr("no training lease is issued until it is out"));
  const Json waiting = system.Job(job);
  EXPECT_THAT(waiting["progress"].value("phase", ""),
              HasSubstr("(waiting: publishing weight version"))
      << waiting.dump();
  system.StartCache();  // the same store and address
  system.ExpectCompletes(job, 30);
  EXPECT_THAT(system.Log("actor-1"), HasSubstr("weights v31 installed"));
}

TEST(RecoveryCliTest, ALearnerRestartedWhileItsPublishWaitsResumesTheJob) {
  System system("cache_kill_learner_restart", "  checkpoint_every: 1\n");
  system.StartAll();
  const std::string job = system.SubmitTrain(30);
  ASSERT_TRUE(system.TrainingAt(job, 1));
  EXPECT_EQ(system.Stop("cache", SIGKILL), 128 + SIGKILL);
  EXPECT_THAT(WaitForLog(system.LogOf("learner"), "cannot publish weight version", 60),
              HasSubstr("cannot publish weight version"));
  EXPECT_EQ(system.Stop("learner", SIGTERM), 0) << system.Log("learner");  // checkpoints
  system.StartCache();
  system.StartLearner();
  system.ExpectCompletes(job, 30);
}

// Killed before its first checkpoint, the learner starts again from its model at version 1
// while the cache holds the versions of the lost steps: it numbers its weights after the
// cache's newest (a kill after a checkpoint is the same case; learner_test covers it), the
// job trains from its start, and the actor, kept running through the restart, follows.
TEST(RecoveryCliTest, ALearnerKilledNumbersItsWeightsAfterTheCachesAndTheActorFollows) {
  System system("learner_kill", "  checkpoint_every: 1000\n");
  system.StartAll();
  const std::string job = system.SubmitTrain(40);
  ASSERT_TRUE(system.TrainingAt(job, 2));
  EXPECT_EQ(system.Stop("learner", SIGKILL), 128 + SIGKILL);
  const int64_t lost_version = System::Version(system.last_job());
  system.StartLearner();
  const std::string log = WaitForLog(system.LogOf("learner"), "these weights become version");
  EXPECT_THAT(log, HasSubstr("these weights become version"));
  const Json done = system.ExpectCompletes(job, 40);
  // Versions went on past what the killed learner had published: 40 steps after it.
  EXPECT_GT(System::Version(done), lost_version + 40);
  EXPECT_THAT(system.Log("actor-1"),
              HasSubstr("weights v" + std::to_string(System::Version(done)) + " installed"));
  EXPECT_THAT(system.Log("learner"), ::testing::Not(HasSubstr("stored with other weights")));
}

TEST(RecoveryCliTest, AnActorKilledMidStepIsReplacedAndItsLeasesAreReissued) {
  System system("actor_kill", "  checkpoint_every: 100\n");
  system.StartAll();
  const std::string job = system.SubmitTrain(30);
  ASSERT_TRUE(system.TrainingAt(job, 1));
  EXPECT_EQ(system.Stop("actor-1", SIGKILL), 128 + SIGKILL);
  system.StartActor("actor-2");
  system.ExpectCompletes(job, 30);
  EXPECT_THAT(system.Log("actor-2"), HasSubstr("actor actor-2"));
}

TEST(RecoveryCliTest, ADataParallelRankKilledStopsRankZeroWithAMessage) {
  const std::string master = "127.0.0.1:" + std::to_string(FreePort());
  System system("rank_kill",
                "  checkpoint_every: 1\n  data_parallel:\n    world_size: 2\n    "
                "master: \"" +
                    master + "\"\n    timeout: 20s\n");
  system.StartCache();
  // Rank 1 first (it waits for rank 0 at the rendezvous), with a state directory of its own.
  const pid_t rank1 = StartDeepsearch({"learner", "--config", system.dir() + "/config.yaml",
                                       "--state-dir", system.dir() + "/state1", "--listen",
                                       "127.0.0.1:0", "--set", "learner.data_parallel.rank=1"},
                                      system.dir() + "/rank1.log");
  system.StartLearner({"--set", "learner.data_parallel.rank=0"});
  system.StartActor("actor-1");
  const std::string job = system.SubmitTrain(50);
  ASSERT_TRUE(system.TrainingAt(job, 1)) << ReadFile(system.dir() + "/rank1.log");
  ASSERT_EQ(::kill(rank1, SIGKILL), 0);
  EXPECT_EQ(ExitCode(rank1), 128 + SIGKILL);
  const int status = system.WaitForExit("learner", 120);
  EXPECT_EQ(status, 1) << system.Log("learner");
  const std::string log = system.Log("learner");
  // The last line names the group, the peer that went away and the collective that failed.
  EXPECT_THAT(log, HasSubstr("deepsearch learner: data parallel rank 0 of 2 (gloo, master " +
                             master + ")"));
  EXPECT_THAT(log, HasSubstr("learner: stopping: "));
}

}  // namespace
}  // namespace deepsearch::testing
