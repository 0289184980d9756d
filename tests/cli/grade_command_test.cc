// `deepsearch grade` as a user runs it: the golden set through the binary, field aliases,
// malformed lines, the summary and the exit codes.
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/cli/cli_runner.h"

namespace deepsearch {
namespace {

using ::testing::HasSubstr;

using GradeRun = testing::CliRun;
using testing::Lines;

// Runs `deepsearch ARGS` with `input` on stdin, keeping stdout and stderr apart.
GradeRun RunGrade(const std::string& args, const std::string& input = "") {
  return testing::RunDeepsearch(args, input);
}

std::string GoldenPath() {
  const char* root = std::getenv("DEEPSEARCH_SOURCE_DIR");
  return std::string(root != nullptr ? root : ".") + "/tests/data/grader/strict_golden.jsonl";
}

TEST(GradeCommandTest, StrictModeAgreesWithTheGoldenSet) {
  const std::vector<std::string> golden = Lines(testing::ReadFile(GoldenPath()));
  ASSERT_GE(golden.size(), 400u);
  const GradeRun run = RunGrade("grade --mode strict " + GoldenPath());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::vector<std::string> out = Lines(run.out);
  ASSERT_EQ(out.size(), golden.size());
  int correct = 0;
  for (size_t i = 0; i < golden.size(); ++i) {
    const nlohmann::json expected = nlohmann::json::parse(golden[i]);
    const nlohmann::json got = nlohmann::json::parse(out[i]);
    const bool verdict = expected.at("correct");
    correct += verdict;
    EXPECT_EQ(got.at("correct"), verdict) << "line " << i + 1;
    EXPECT_EQ(got.at("pred"), expected.at("pred")) << "line " << i + 1;
    EXPECT_EQ(got.at("gt"), expected.at("gt")) << "line " << i + 1;
    EXPECT_EQ(got.at("reward"), verdict ? 1.0 : -1.0) << "line " << i + 1;
    EXPECT_EQ(got.at("reason") == "", verdict) << "line " << i + 1;
    // The input fields come back unchanged.
    EXPECT_EQ(got.at("case"), expected.at("case")) << "line " << i + 1;
    EXPECT_EQ(got.at("response"), expected.at("response")) << "line " << i + 1;
    EXPECT_EQ(got.at("answer"), expected.at("answer")) << "line " << i + 1;
  }
  const int total = static_cast<int>(golden.size());
  EXPECT_THAT(run.err,
              HasSubstr("graded " + std::to_string(total) + ": " + std::to_string(correct) +
                        " correct, " + std::to_string(total - correct) + " wrong, 0 errors"));
}

TEST(GradeCommandTest, ReadsStdinAndFieldAliasesAndKeepsFieldOrder) {
  const GradeRun run =
      RunGrade("grade",
               "{\"id\": 7, \"response\": \"so \\\\boxed{12}\", \"answer\": \"12\"}\n"
               "{\"solution\": \"\\\\boxed{4}\", \"ground_truth\": 4}\n"
               "\n"
               "{\"output\": \"\\\\boxed{x}\", \"final_answer\": \"y\"}\n");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::vector<std::string> out = Lines(run.out);
  ASSERT_EQ(out.size(), 3u);  // the blank line is skipped
  EXPECT_EQ(out[0],
            R"({"id":7,"response":"so \\boxed{12}","answer":"12","correct":true,"reward":1.0,)"
            R"("pred":"12","gt":"12","reason":""})");
  EXPECT_EQ(nlohmann::json::parse(out[1]).at("correct"), true);  // a number as ground truth
  const nlohmann::json third = nlohmann::json::parse(out[2]);
  EXPECT_EQ(third.at("correct"), false);
  EXPECT_EQ(third.at("reward"), -1.0);
  EXPECT_EQ(third.at("reason"), "'x' != 'y'");
  EXPECT_THAT(run.err, HasSubstr("graded 3: 2 correct, 1 wrong, 0 errors"));
}

TEST(GradeCommandTest, ReportsMalformedLinesAndGoesOn) {
  const GradeRun run = RunGrade("grade -",
                                "{\"response\": \"\\\\boxed{1}\", \"answer\": \"1\"}\n"
                                "not json\n"
                                "[1, 2]\n"
                                "{\"response\": 5, \"answer\": \"5\"}\n"
                                "{\"response\": \"\\\\boxed{5}\"}\n"
                                "{\"response\": \"\\\\boxed{5}\", \"answer\": [5]}\n"
                                "{\"response\": \"\\\\boxed{2}\", \"answer\": \"3\"}\n");
  EXPECT_EQ(run.exit_code, 1);
  const std::vector<std::string> out = Lines(run.out);
  ASSERT_EQ(out.size(), 7u);
  EXPECT_EQ(nlohmann::json::parse(out[0]).at("correct"), true);
  for (int line = 2; line <= 6; ++line) {
    const nlohmann::json error = nlohmann::json::parse(out[line - 1]);
    EXPECT_EQ(error.at("line"), line);
    EXPECT_THAT(run.err, HasSubstr("line " + std::to_string(line) + ": " +
                                   error.at("error").get<std::string>()));
  }
  EXPECT_THAT(nlohmann::json::parse(out[1]).at("error").get<std::string>(), HasSubstr("not JSON"));
  EXPECT_EQ(nlohmann::json::parse(out[2]).at("error"), "expected a JSON object, got array");
  EXPECT_EQ(nlohmann::json::parse(out[3]).at("error"), "\"response\" is number, expected a string");
  EXPECT_EQ(nlohmann::json::parse(out[4]).at("error"),
            "no answer (expected \"answer\", \"ground_truth\" or \"final_answer\" as a string or "
            "a number)");
  EXPECT_EQ(nlohmann::json::parse(out[5]).at("error"),
            "\"answer\" is array, expected a string or a number");
  EXPECT_EQ(nlohmann::json::parse(out[6]).at("correct"), false);
  EXPECT_THAT(run.err, HasSubstr("graded 7: 1 correct, 1 wrong, 5 errors"));
}

TEST(GradeCommandTest, EquivalentModeComparesValues) {
  const std::string input =
      "{\"response\": \"\\\\boxed{0.5}\", \"answer\": \"\\\\frac12\"}\n"
      "{\"response\": \"\\\\boxed{\\\\sqrt{2}}\", \"answer\": \"1.414\"}\n";
  const GradeRun strict = RunGrade("grade", input);
  const GradeRun equivalent = RunGrade("grade --mode equivalent", input);
  ASSERT_EQ(strict.exit_code, 0) << strict.err;
  ASSERT_EQ(equivalent.exit_code, 0) << equivalent.err;
  const std::vector<std::string> s = Lines(strict.out), e = Lines(equivalent.out);
  ASSERT_EQ(s.size(), 2u);
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(s[0]).at("correct"), false);
  EXPECT_EQ(nlohmann::json::parse(e[0]).at("correct"), true);
  EXPECT_EQ(nlohmann::json::parse(e[0]).at("pred"), "0.5");
  EXPECT_EQ(nlohmann::json::parse(e[0]).at("gt"), "\\frac{1}{2}");
  EXPECT_EQ(nlohmann::json::parse(e[1]).at("reason"), "cannot compare '\\sqrt{2}' and '1.414'");
  EXPECT_THAT(equivalent.err, HasSubstr("graded 2: 1 correct, 1 wrong, 0 errors"));
}

TEST(GradeCommandTest, UsageErrorsExitWithTwo) {
  const GradeRun mode = RunGrade("grade --mode loose");
  EXPECT_EQ(mode.exit_code, 2);
  EXPECT_THAT(mode.err, HasSubstr("--mode"));
  const GradeRun missing = RunGrade("grade /nonexistent/answers.jsonl");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("File does not exist"));
  EXPECT_EQ(RunGrade("grade a.jsonl b.jsonl").exit_code, 2);
  const GradeRun help = RunGrade("--help");
  EXPECT_THAT(help.out, HasSubstr("grade"));
}

TEST(GradeCommandTest, EmptyInputGradesNothing) {
  const GradeRun run = RunGrade("grade");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.out, "");
  EXPECT_THAT(run.err, HasSubstr("graded 0: 0 correct, 0 wrong, 0 errors"));
}

}  // namespace
}  // namespace deepsearch
