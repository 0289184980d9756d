// Problems, JSONL problem sets, task specs and the registry, hard subsets and pass@k, and the
// consequences of the strict grader that DEEPSEARCH_SPEC §1.3 singles out.
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/tasks/dataset.h"
#include "common/tasks/hard_subset.h"
#include "common/tasks/math_grader.h"
#include "common/tasks/task.h"

namespace deepsearch {
namespace {

using ::testing::HasSubstr;

TEST(ProblemTest, StableIdsDependOnContentOnly) {
  EXPECT_EQ(StableProblemId("What is 2+2?", "4"), StableProblemId("What is 2+2?", "4"));
  EXPECT_NE(StableProblemId("ab", "c"), StableProblemId("a", "bc"));
  EXPECT_THAT(StableProblemId("x", "y"), ::testing::MatchesRegex("p-[0-9a-f]{16}"));
}

TEST(DatasetTest, ReadsDeepMathStyleLinesAndReportsBadOnesWithLineNumbers) {
  std::istringstream in(
      R"({"question": "1+1?", "final_answer": "2", "difficulty": 3.5, "id": "q1"})"
      "\n"
      "\n"  // blank lines are skipped
      R"({"problem": "2+2?", "answer": 4, "task": "math"})"
      "\n"
      "not json\n"
      R"(["an", "array"])"
      "\n"
      R"({"question": "no answer here"})"
      "\n"
      R"({"answer": "5"})"
      "\n"
      R"({"question": "again", "answer": "1", "id": "q1"})"
      "\n"
      R"({"prompt": "3+3?", "answer": "6"})"
      "\n"
      R"({"prompt": "4+4?", "answer": "8", "task": "nosuchtask"})"
      "\n"
      R"({"prompt": "5+5?", "answer": "10", "task": "countdown:typo=1"})"
      "\n");
  const ProblemSet set = ReadProblemsJsonl(in);
  ASSERT_EQ(set.problems.size(), 3u);
  EXPECT_EQ(set.problems[0].id, "q1");
  EXPECT_EQ(set.problems[0].prompt, "1+1?");
  EXPECT_EQ(set.problems[0].answer, "2");
  EXPECT_EQ(set.problems[0].metadata.at("difficulty"), "3.5");
  EXPECT_EQ(set.problems[1].answer, "4");  // numbers become text
  EXPECT_EQ(set.problems[1].task, "math");
  EXPECT_EQ(set.problems[1].id, StableProblemId("2+2?", "4"));
  EXPECT_EQ(set.problems[2].prompt, "3+3?");
  ASSERT_EQ(set.errors.size(), 7u);
  EXPECT_EQ(set.errors[0].line, 4);
  EXPECT_EQ(set.errors[0].message, "not valid JSON");
  EXPECT_EQ(set.errors[1].line, 5);
  EXPECT_EQ(set.errors[1].message, "expected a JSON object");
  EXPECT_EQ(set.errors[2].line, 6);
  EXPECT_THAT(set.errors[2].message, HasSubstr("no answer"));
  EXPECT_EQ(set.errors[3].line, 7);
  EXPECT_THAT(set.errors[3].message, HasSubstr("no problem statement"));
  EXPECT_EQ(set.errors[4].line, 8);
  EXPECT_EQ(set.errors[4].message, "duplicate id 'q1'");
  // Task specs the registry does not make.
  EXPECT_EQ(set.errors[5].line, 10);
  EXPECT_THAT(set.errors[5].message, HasSubstr("unknown task 'nosuchtask' (known: "));
  EXPECT_THAT(set.errors[5].message, HasSubstr("countdown"));
  EXPECT_EQ(set.errors[6].line, 11);
  EXPECT_EQ(set.errors[6].message,
            "task 'countdown:typo=1': task countdown: unknown option typo (known: max, "
            "max_target, n, use_all)");
  EXPECT_THAT(set.ErrorSummary(2),
              HasSubstr("line 4: not valid JSON; line 5: expected a JSON object; and 5 more"));
}

TEST(DatasetTest, WrittenProblemsReadBackEqual) {
  std::vector<Problem> problems(2);
  problems[0] = {"a", "Use 3 5 7 8 to make 24.\n", "24", "countdown:n=4", {{"source", "gen"}}};
  problems[1] = {StableProblemId("q\"uote", "\\frac{1}{2}"), "q\"uote", "\\frac{1}{2}", "", {}};
  std::ostringstream out;
  for (const Problem& p : problems) WriteProblemJsonl(p, out);
  std::istringstream in(out.str());
  const ProblemSet back = ReadProblemsJsonl(in);
  EXPECT_TRUE(back.errors.empty()) << back.ErrorSummary();
  EXPECT_EQ(back.problems, problems);
}

TEST(HardSubsetTest, KeepsProblemsWithAtMostAQuarterCorrect) {
  const std::vector<SampleOutcomes> outcomes = {
      {"none", 4, 0}, {"one", 4, 1}, {"two", 4, 2}, {"all", 4, 4}, {"unsampled", 0, 0}};
  EXPECT_EQ(SelectHardSubset(outcomes), (std::vector<std::string>{"none", "one"}));
  EXPECT_EQ(SelectHardSubset(outcomes, 0.5), (std::vector<std::string>{"none", "one", "two"}));
}

TEST(HardSubsetTest, PassAtKMatchesHandComputedValues) {
  EXPECT_DOUBLE_EQ(PassAtK(4, 1, 1), 0.25);
  EXPECT_DOUBLE_EQ(PassAtK(4, 1, 2), 0.5);                    // 1 - C(3,2)/C(4,2) = 1 - 3/6
  EXPECT_NEAR(PassAtK(10, 2, 3), 1.0 - 56.0 / 120.0, 1e-12);  // 1 - C(8,3)/C(10,3)
  EXPECT_DOUBLE_EQ(PassAtK(8, 0, 8), 0.0);
  EXPECT_DOUBLE_EQ(PassAtK(8, 8, 1), 1.0);
  EXPECT_DOUBLE_EQ(PassAtK(5, 3, 4), 1.0);  // fewer than k failures: every k-subset has a success
  EXPECT_NEAR(
      PassAtK(32, 3, 8),
      1.0 - (29.0 * 28 * 27 * 26 * 25 * 24 * 23 * 22) / (32.0 * 31 * 30 * 29 * 28 * 27 * 26 * 25),
      1e-12);
}

TEST(TaskOptionsTest, ParsesAndRefusesBadSpecs) {
  absl::StatusOr<TaskOptions> o = TaskOptions::Parse("countdown: n=4 ,max=25");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->name(), "countdown");
  EXPECT_EQ(*o->Int("n", 3, 2, 6), 4);
  EXPECT_EQ(*o->Int("max", 10, 1, 100), 25);
  EXPECT_EQ(*o->Int("max_target", 100, 1, 1000), 100);
  EXPECT_TRUE(o->Finish().ok());

  o = TaskOptions::Parse("countdown:n=9,typo=1");
  EXPECT_EQ(std::string(o->Int("n", 3, 2, 6).status().message()),
            "task countdown: n must be an integer in [2, 6], got '9'");
  EXPECT_EQ(std::string(o->Finish().message()), "task countdown: unknown option typo (known: n)");
  EXPECT_THAT(std::string(TaskOptions::Parse("countdown:n").status().message()),
              HasSubstr("expected key=value"));
  EXPECT_THAT(std::string(TaskOptions::Parse(":n=1").status().message()),
              HasSubstr("no task name"));
  EXPECT_THAT(std::string(TaskOptions::Parse("a:n=1,n=2").status().message()),
              HasSubstr("key 'n' given twice"));
}

TEST(TaskRegistryTest, MakesTheMathFamilyAndNamesUnknownTasks) {
  absl::StatusOr<std::unique_ptr<TaskFamily>> math = MakeTaskFamily("");
  ASSERT_TRUE(math.ok()) << math.status();
  EXPECT_EQ((*math)->name(), "math");
  EXPECT_FALSE((*math)->generates());
  Problem p;
  p.answer = "\\frac{1}{2}";
  EXPECT_TRUE((*math)->Verify(p, "so the answer is \\boxed{\\frac12}").correct);
  EXPECT_THAT(TaskFamilyNames(), ::testing::Contains("math"));
  absl::Status unknown = MakeTaskFamily("chess:depth=3").status();
  EXPECT_THAT(std::string(unknown.message()), HasSubstr("unknown task 'chess' (known: "));
  EXPECT_THAT(std::string(MakeTaskFamily("math:mode=loose").status().message()),
              HasSubstr("mode must be strict"));
  EXPECT_THAT(std::string(MakeTaskFamily("math:depth=3").status().message()),
              HasSubstr("unknown option depth"));
}

// The consequences DEEPSEARCH_SPEC §1.3 lists, each worth a test.
TEST(MathGraderTest, SpecConsequences) {
  EXPECT_EQ(NormalizeFinalAnswer("a b c"), "bc");
  EXPECT_EQ(NormalizeFinalAnswer("1,2,3"), "123");
  EXPECT_EQ(NormalizeFinalAnswer("\\frac12"), "\\frac{1}{2}");
  // With no box, a ground truth of "[INVALID]" matches.
  const Verdict invalid = GradeMathResponse("no box at all", "[INVALID]", GradeMode::kStrict);
  EXPECT_TRUE(invalid.correct);
  EXPECT_EQ(invalid.predicted, "[INVALID]");
  const Verdict wrong = GradeMathResponse("\\boxed{12}", "13", GradeMode::kStrict);
  EXPECT_FALSE(wrong.correct);
  EXPECT_EQ(wrong.reward, -1.0);
  EXPECT_EQ(wrong.reason, "'12' != '13'");
  EXPECT_EQ(GradeMathResponse("x", "13", GradeMode::kStrict).reason,
            "no \\boxed{} in the last 300 characters");
  EXPECT_EQ(LastBoxedOnly("\\boxed{a} then \\boxed{\\frac{1}{2}} end"), "\\boxed{\\frac{1}{2}}");
  EXPECT_EQ(LastBoxedOnly("\\boxed{unclosed"), std::nullopt);
}

}  // namespace
}  // namespace deepsearch
