// Jobs survive restarts: submit, update, cancel and list, then reopen the directory and find
// everything as it was; retried submissions; bad input; a corrupt job file; watching.
#include "learner/job_store.h"

#include <filesystem>
#include <fstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace deepsearch {
namespace {

using ::testing::HasSubstr;

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/job_store_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::vector<Problem> Problems(int n) {
    std::vector<Problem> out;
    for (int i = 0; i < n; ++i) {
      Problem p;
      p.prompt = "What is " + std::to_string(i) + "+1?";
      p.answer = std::to_string(i + 1);
      p.task = "math";
      out.push_back(p);
    }
    return out;
  }

  std::string dir_;
};

TEST_F(JobStoreTest, JobsAndProgressSurviveAReopen) {
  std::string id;
  {
    std::unique_ptr<JobStore> store = *JobStore::Open(dir_);
    JobOptions options;
    options.algorithm = Algorithm::kGrpo;
    SearchParams search;
    search.max_depth = 9;
    search.backtrace = Backtrace::kUct;
    options.search = search;
    options.samples_per_problem = 4;
    absl::StatusOr<Job> job = store->Submit(JobKind::kSolve, "eval", Problems(3), options, "req-1");
    ASSERT_TRUE(job.ok()) << job.status();
    id = job->id;
    EXPECT_EQ(id, "job-000001");
    EXPECT_EQ(job->progress.problems_total, 3);
    SolveSummary s;
    s.answer = "2";
    s.selection = "verified";
    s.correct = true;
    s.samples = 4;
    s.correct_samples = 1;
    s.pass_at_k = {{1, 0.25}, {4, 1.0}};
    ASSERT_TRUE(store
                    ->Update(id,
                             [&](Job& j) {
                               j.state = JobState::kRunning;
                               j.progress.problems_done = 1;
                               j.results.push_back({"p-x", s});
                             })
                    .ok());
  }
  std::unique_ptr<JobStore> store = *JobStore::Open(dir_);
  EXPECT_TRUE(store->load_errors().empty());
  const Job job = *store->Get(id);
  EXPECT_EQ(job.state, JobState::kRunning);
  EXPECT_EQ(job.name, "eval");
  EXPECT_EQ(job.options.algorithm, Algorithm::kGrpo);
  ASSERT_TRUE(job.options.search.has_value());
  EXPECT_EQ(job.options.search->max_depth, 9);
  EXPECT_EQ(job.options.search->backtrace, Backtrace::kUct);
  EXPECT_FALSE(job.options.sampling.has_value());
  EXPECT_EQ(job.progress.problems_done, 1);
  ASSERT_EQ(job.results.size(), 1u);
  EXPECT_EQ(job.results[0].summary.pass_at_k.at(1), 0.25);
  EXPECT_TRUE(job.results[0].summary.correct);
  const std::vector<Problem> problems = *store->Problems(id);
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_EQ(problems[2].answer, "3");
  EXPECT_EQ(problems[0].id, StableProblemId(problems[0].prompt, problems[0].answer));
  // The retried request returns the same job; new jobs continue the numbering.
  EXPECT_EQ(store->Submit(JobKind::kSolve, "again", Problems(1), {}, "req-1")->id, id);
  EXPECT_EQ(store->Submit(JobKind::kTrain, "t", Problems(1), {}, "")->id, "job-000002");
  EXPECT_EQ(store->Active().size(), 2u);
}

TEST_F(JobStoreTest, BadSubmissionsAreRefused) {
  std::unique_ptr<JobStore> store = *JobStore::Open(dir_);
  EXPECT_THAT(std::string(store->Submit(JobKind::kTrain, "x", {}, {}, "").status().message()),
              HasSubstr("at least one problem"));
  std::vector<Problem> twice = Problems(2);
  twice[1] = twice[0];
  EXPECT_THAT(std::string(store->Submit(JobKind::kTrain, "x", twice, {}, "").status().message()),
              HasSubstr("appears twice (problem 1)"));
  std::vector<Problem> empty = Problems(1);
  empty[0].prompt.clear();
  EXPECT_THAT(std::string(store->Submit(JobKind::kTrain, "x", empty, {}, "").status().message()),
              HasSubstr("empty prompt"));
  EXPECT_EQ(store->Get("job-9").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(JobStoreTest, CancelListAndPages) {
  std::unique_ptr<JobStore> store = *JobStore::Open(dir_);
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(store->Submit(JobKind::kSolve, "j", Problems(1), {}, "").ok());
  ASSERT_TRUE(store->Cancel("job-000002").ok());
  EXPECT_EQ(store->Cancel("job-000002").status().code(), absl::StatusCode::kFailedPrecondition);
  JobListPage page = *store->List(2, "", std::nullopt);
  ASSERT_EQ(page.jobs.size(), 2u);
  EXPECT_EQ(page.jobs[0].id, "job-000005");  // newest first
  std::vector<std::string> seen;
  while (true) {
    for (const Job& j : page.jobs) seen.push_back(j.id);
    if (page.next_page_token.empty()) break;
    page = *store->List(2, page.next_page_token, std::nullopt);
  }
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(store->List(10, "", JobState::kCancelled)->jobs.size(), 1u);
  EXPECT_EQ(store->List(10, "zz", std::nullopt).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Active().size(), 4u);
}

TEST_F(JobStoreTest, CorruptJobFileIsReportedAndTheRestLoads) {
  {
    std::unique_ptr<JobStore> store = *JobStore::Open(dir_);
    ASSERT_TRUE(store->Submit(JobKind::kSolve, "a", Problems(1), {}, "").ok());
    ASSERT_TRUE(store->Submit(JobKind::kSolve, "b", Problems(1), {}, "").ok());
  }
  std::ofstream(dir_ + "/job-000001/job.json") << "{\"id\": 3";
  std::unique_ptr<JobStore> store = *JobStore::Open(dir_);
  ASSERT_EQ(store->load_errors().size(), 1u);
  EXPECT_THAT(store->load_errors()[0], HasSubstr("job-000001/job.json"));
  EXPECT_TRUE(store->Get("job-000002").ok());
  EXPECT_EQ(store->Submit(JobKind::kSolve, "c", Problems(1), {}, "")->id, "job-000003");
}

TEST_F(JobStoreTest, WaitForChangeWakesOnUpdate) {
  std::unique_ptr<JobStore> store = *JobStore::Open(dir_);
  const Job job = *store->Submit(JobKind::kSolve, "w", Problems(1), {}, "");
  // Nothing changes: the deadline returns the job as it is.
  EXPECT_EQ(
      store->WaitForChange(job.id, job.version, absl::Now() + absl::Milliseconds(20))->version,
      job.version);
  std::thread updater([&] {
    absl::SleepFor(absl::Milliseconds(20));
    (void)store->Update(job.id, [](Job& j) { j.progress.problems_done = 1; });
  });
  const Job changed = *store->WaitForChange(job.id, job.version, absl::Now() + absl::Seconds(10));
  updater.join();
  EXPECT_EQ(changed.version, job.version + 1);
  EXPECT_EQ(changed.progress.problems_done, 1);
}

TEST(SolveModeTest, NamesParseBackAndOtherTextIsRefused) {
  for (JobOptions::SolveMode m : {JobOptions::SolveMode::kSearch, JobOptions::SolveMode::kRollout})
    EXPECT_EQ(ParseSolveMode(SolveModeName(m)), m);
  EXPECT_EQ(SolveModeName(JobOptions::SolveMode::kRollout), "rollout");
  EXPECT_EQ(SolveModeName(JobOptions::SolveMode::kSearch), "search");
  EXPECT_EQ(ParseSolveMode("Rollout"), std::nullopt);
  EXPECT_EQ(ParseSolveMode(""), std::nullopt);
}

}  // namespace
}  // namespace deepsearch
