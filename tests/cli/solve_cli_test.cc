// `deepsearch solve` as a user runs it: a tiny model, generated problems, one JSON line per
// problem in input order, the summary, and clear errors for bad input.
#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/cli/cli_runner.h"

namespace deepsearch {
namespace {

using ::testing::HasSubstr;
using testing::Lines;
using testing::RunDeepsearch;

class SolveCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(::testing::TempDir() + "/solve_cli_" + std::to_string(::getpid()));
    std::filesystem::create_directories(*dir_);
    ASSERT_EQ(RunDeepsearch("model init --preset tiny --seed 3 --out " + Path("model")).exit_code,
              0);
    ASSERT_EQ(
        RunDeepsearch("data gen --task addition:digits=2 --n 6 --seed 2 --out " + Path("p.jsonl"))
            .exit_code,
        0);
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  static std::string Path(const std::string& name) { return *dir_ + "/" + name; }
  static std::string* dir_;
};
std::string* SolveCliTest::dir_ = nullptr;

TEST_F(SolveCliTest, SearchesEveryProblemAndReportsInInputOrder) {
  const std::string common = "solve --model " + Path("model") + " --problems " + Path("p.jsonl") +
                             " -k 4 --set search.step_tokens=8 --set search.max_depth=4"
                             " --set search.expansion_width=2 --set search.max_response_tokens=32"
                             " --set search.overlong_buffer=8";
  const testing::CliRun r = RunDeepsearch(common + " --trees 3 --trajectories");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  const std::vector<std::string> problems = Lines(testing::ReadFile(Path("p.jsonl")));
  ASSERT_EQ(lines.size(), problems.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    const nlohmann::json j = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(j["id"], nlohmann::json::parse(problems[i])["id"]) << i;
    EXPECT_EQ(j["samples"], 4);
    ASSERT_EQ(j["trajectories"].size(), 4u);
    EXPECT_TRUE(j["pass_at_k"].contains("1"));
    EXPECT_TRUE(j["pass_at_k"].contains("4"));
    EXPECT_GE(j["expansions"].get<int>(), 4);
    const std::string selection = j["selection"];
    EXPECT_TRUE(selection == "verified" || selection == "majority" || selection == "none")
        << selection;
    EXPECT_EQ(j["correct"].get<bool>(), selection == "verified");
  }
  EXPECT_THAT(r.err, HasSubstr("6 problems, 0 failed"));
  EXPECT_THAT(r.err, HasSubstr("of wall time outside the model"));
  // Rollout mode: K direct samples, same output shape; the same seed gives the same answers.
  const testing::CliRun a = RunDeepsearch(common + " --mode rollout --seed 9 --trees 4");
  const testing::CliRun b = RunDeepsearch(common + " --mode rollout --seed 9 --trees 1");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(Lines(a.out).size(), 6u);
}

TEST_F(SolveCliTest, BadInputIsReported) {
  testing::CliRun r =
      RunDeepsearch("solve --model " + Path("model") + " --problems " + Path("missing.jsonl"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("missing.jsonl"));
  r = RunDeepsearch("solve --model " + Path("nomodel") + " --problems " + Path("p.jsonl"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("nomodel"));
  r = RunDeepsearch("solve --model " + Path("model") + " --problems " + Path("p.jsonl") +
                    " --set search.max_depth=0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("search.max_depth"));
  r = RunDeepsearch("solve --model " + Path("model"));
  EXPECT_EQ(r.exit_code, 2);  // the command line itself
}

}  // namespace
}  // namespace deepsearch
