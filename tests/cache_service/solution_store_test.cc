// The solution store: re-verification with each problem's own verifier, dedupe by problem,
// normalised answer and response tokens, the problem-identity rule, lookups, and durability
// across a reopen (the kill -9 case is in cache_service_test.cc, against the real binary).
#include "cache_service/solution_store.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

#include "common/core/rng.h"
#include "common/tasks/task.h"

namespace deepsearch {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr char kTask[] = "countdown:n=4,max=25";

class SolutionStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/solution_store_", ::getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    family_ = *MakeTaskFamily(kTask);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string db() const { return dir_ + "/solutions.db"; }

  // A generated Countdown problem and the worked solution its solver finds.
  SolutionToPut Solved(uint64_t seed, std::vector<int32_t> tokens = {1, 2, 3}) {
    Rng rng(seed);
    SolutionToPut s;
    s.problem = family_->Generate(rng);
    s.response_text = *family_->Solve(s.problem);
    s.response_tokens = std::move(tokens);
    s.weight_version = 7;
    s.trajectory_id = absl::StrCat("tree-", seed, "/0");
    return s;
  }

  std::string dir_;
  std::unique_ptr<TaskFamily> family_;
};

std::vector<PutStatus> Statuses(const std::vector<PutOutcome>& outcomes) {
  std::vector<PutStatus> s;
  for (const PutOutcome& o : outcomes) s.push_back(o.status);
  return s;
}

TEST_F(SolutionStoreTest, StoresVerifiedSolutionsAndCountsDuplicates) {
  auto store = *SolutionStore::Open(db());
  const SolutionToPut a = Solved(1), b = Solved(2);
  auto first = store->Put({a, b});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(Statuses(*first), ElementsAre(PutStatus::kStored, PutStatus::kStored));
  EXPECT_EQ((*first)[0].problem_id, a.problem.id);

  // The same solution twice more (once within one call): counted, not stored again.
  auto again = store->Put({a, a});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_THAT(Statuses(*again), ElementsAre(PutStatus::kDuplicate, PutStatus::kDuplicate));

  const SolutionStoreStats stats = store->stats();
  EXPECT_EQ(stats.problems, 2);
  EXPECT_EQ(stats.solutions, 2);
  EXPECT_EQ(stats.duplicates, 2);
  EXPECT_EQ(stats.rejected, 0);

  auto found = store->Lookup({a.problem.id, "p-unknown"}, 0);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->size(), 1u);
  const std::vector<StoredSolutionRecord>& records = found->at(a.problem.id);
  ASSERT_THAT(records, SizeIs(1));
  EXPECT_EQ(records[0].response_text, a.response_text);
  EXPECT_EQ(records[0].response_tokens, a.response_tokens);
  EXPECT_EQ(records[0].answer, a.problem.answer);  // the verifier's normalised answer
  EXPECT_EQ(records[0].weight_version, 7);
  EXPECT_EQ(records[0].duplicates, 2);
  EXPECT_EQ(store->stats().lookups, 2);
  EXPECT_EQ(store->stats().lookup_hits, 1);
}

TEST_F(SolutionStoreTest, OtherTokensAreAnotherSolutionOfTheSameProblem) {
  auto store = *SolutionStore::Open(db());
  SolutionToPut a = Solved(3, {5, 6}), b = Solved(3, {5, 6, 7});
  // Same tokens, other text: the tokens decide (the text is their decoding).
  SolutionToPut c = Solved(3, {5, 6});
  c.response_text += "\n";
  auto out = store->Put({a, b, c});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Statuses(*out),
              ElementsAre(PutStatus::kStored, PutStatus::kStored, PutStatus::kDuplicate));
  // Without tokens the text is the key.
  SolutionToPut d = Solved(3, {}), e = Solved(3, {});
  e.response_text += "\n";
  out = store->Put({d, e, d});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Statuses(*out),
              ElementsAre(PutStatus::kStored, PutStatus::kStored, PutStatus::kDuplicate));

  auto found = *store->Lookup({a.problem.id}, 0);
  ASSERT_THAT(found.at(a.problem.id), SizeIs(4));
  EXPECT_EQ(found.at(a.problem.id)[1].response_tokens, (std::vector<int32_t>{5, 6, 7}));
  auto two = *store->Lookup({a.problem.id}, 2);  // oldest first
  ASSERT_THAT(two.at(a.problem.id), SizeIs(2));
  EXPECT_EQ(two.at(a.problem.id)[0].response_tokens, (std::vector<int32_t>{5, 6}));
}

TEST_F(SolutionStoreTest, RefusesWhatCannotBeVerifiedAndKeepsTheRest) {
  auto store = *SolutionStore::Open(db(), {.max_response_bytes = 4096});
  const SolutionToPut good = Solved(4);
  SolutionToPut wrong = Solved(5);
  // The last line's boxed answer changed: the steps no longer reach it.
  const size_t box = wrong.response_text.rfind("\\boxed{");
  wrong.response_text = wrong.response_text.substr(0, box) + "\\boxed{100000}";
  SolutionToPut no_id = Solved(6);
  no_id.problem.id.clear();
  SolutionToPut empty = Solved(7);
  empty.response_text.clear();
  SolutionToPut unknown_task = Solved(8);
  unknown_task.problem.task = "sudoku:n=9";
  SolutionToPut huge = Solved(9);
  huge.response_text = std::string(5000, 'x');

  auto out = store->Put({wrong, good, no_id, empty, unknown_task, huge});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Statuses(*out),
              ElementsAre(PutStatus::kRejected, PutStatus::kStored, PutStatus::kRejected,
                          PutStatus::kRejected, PutStatus::kRejected, PutStatus::kRejected));
  EXPECT_THAT((*out)[0].reason, HasSubstr("re-verification failed"));
  EXPECT_THAT((*out)[2].reason, HasSubstr("no id"));
  EXPECT_THAT((*out)[3].reason, HasSubstr("empty response"));
  EXPECT_THAT((*out)[4].reason, HasSubstr("unknown task 'sudoku:n=9'"));
  EXPECT_THAT((*out)[5].reason, HasSubstr("5000 bytes"));
  EXPECT_EQ(store->stats().rejected, 5);
  EXPECT_EQ(store->stats().solutions, 1);
  EXPECT_TRUE(store->Lookup({wrong.problem.id}, 0)->empty());
}

TEST_F(SolutionStoreTest, AProblemIdNeverCollectsSolutionsOfAnotherProblem) {
  auto store = *SolutionStore::Open(db());
  const SolutionToPut real = Solved(10);
  SolutionToPut impostor = Solved(11);    // a correct solution of another problem ...
  impostor.problem.id = real.problem.id;  // ... under the first one's id
  auto out = store->Put({real, impostor});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Statuses(*out), ElementsAre(PutStatus::kStored, PutStatus::kRejected));
  EXPECT_THAT((*out)[1].reason, HasSubstr("stored with another task, prompt or answer"));
  // The same problem under a spelling of its spec with the defaults left out is the same.
  SolutionToPut respelled = Solved(10, {9});
  respelled.problem.task = family_->spec();
  out = store->Put({respelled});
  ASSERT_TRUE(out.ok());
  EXPECT_THAT(Statuses(*out), ElementsAre(PutStatus::kStored));
}

TEST_F(SolutionStoreTest, MathProblemsAreGradedByTheMathGrader) {
  auto store = *SolutionStore::Open(db());
  SolutionToPut s;
  s.problem.id = "m-1";
  s.problem.prompt = "What is half of 1?";
  s.problem.answer = "\\frac{1}{2}";
  s.response_text = "Half of one is a half. The answer is \\boxed{\\frac12}";
  SolutionToPut bad = s;
  bad.response_text = "The answer is \\boxed{0.5}";  // strict mode: not the same string
  bad.response_tokens = {1};
  auto out = store->Put({s, bad});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Statuses(*out), ElementsAre(PutStatus::kStored, PutStatus::kRejected));
  EXPECT_EQ(store->Lookup({"m-1"}, 0)->at("m-1")[0].answer, "\\frac{1}{2}");
}

TEST_F(SolutionStoreTest, EverythingAcknowledgedIsThereAfterAReopen) {
  const SolutionToPut a = Solved(12), b = Solved(13);
  {
    auto store = *SolutionStore::Open(db());
    ASSERT_TRUE(store->Put({a, b, a}).ok());
  }
  auto store = SolutionStore::Open(db());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->stats().problems, 2);
  EXPECT_EQ((*store)->stats().solutions, 2);
  EXPECT_EQ((*store)->stats().duplicates, 1);
  auto found = *(*store)->Lookup({a.problem.id, b.problem.id}, 0);
  EXPECT_EQ(found.size(), 2u);
  EXPECT_EQ(found.at(b.problem.id)[0].response_text, b.response_text);
  // And the dedupe survives too.
  EXPECT_THAT(Statuses(*(*store)->Put({b})), ElementsAre(PutStatus::kDuplicate));
}

TEST_F(SolutionStoreTest, AFileThatIsNotADatabaseIsRefusedByName) {
  std::ofstream(db()) << "this is not a database, it is forty-odd bytes of text........";
  auto store = SolutionStore::Open(db());
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr(db()));
  EXPECT_THAT(store.status().message(), HasSubstr("not a database"));
  auto nowhere = SolutionStore::Open("/nonexistent/dir/solutions.db");
  ASSERT_FALSE(nowhere.ok());
  EXPECT_THAT(nowhere.status().message(), HasSubstr("/nonexistent/dir/solutions.db"));
}

}  // namespace
}  // namespace deepsearch
