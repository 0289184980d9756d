// `deepsearch data gen` and `deepsearch data check` as a user runs them.
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
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

struct Result {
  int exit_code;
  std::string output;  // stdout and stderr together
};

Result RunData(const std::string& args) {
  const testing::CliRun r = testing::RunDeepsearch(args);
  return {r.exit_code, r.out + r.err};
}

using testing::Lines;
using testing::ReadFile;

class DataCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/data_cli_" + std::to_string(::getpid());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

TEST_F(DataCliTest, GenIsReproducibleAndPrefixStable) {
  const std::string a = Path("a.jsonl"), b = Path("b.jsonl"), c = Path("c.jsonl"),
                    d = Path("d.jsonl");
  Result r = RunData("data gen --task countdown:n=4 --n 20 --seed 5 --out " + a);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("wrote 20 problems (countdown:max=25,max_target=100,n=4,"
                                  "use_all=true, seed 5) to " +
                                  a));
  ASSERT_EQ(RunData("data gen --task countdown:n=4 --n 20 --seed 5 --out " + b).exit_code, 0);
  ASSERT_EQ(RunData("data gen --task countdown:n=4 --n 20 --seed 6 --out " + c).exit_code, 0);
  ASSERT_EQ(RunData("data gen --task countdown:n=4 --n 7 --seed 5 --out " + d).exit_code, 0);
  const std::string first = ReadFile(a);
  EXPECT_EQ(first, ReadFile(b));  // byte-identical
  EXPECT_NE(first, ReadFile(c));
  EXPECT_TRUE(first.starts_with(ReadFile(d)));  // problem i does not depend on --n
  const std::vector<std::string> lines = Lines(first);
  ASSERT_EQ(lines.size(), 20u);
  for (const std::string& line : lines) {
    const nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_EQ(j["task"], "countdown:max=25,max_target=100,n=4,use_all=true");
    EXPECT_THAT(j["prompt"].get<std::string>(), ::testing::StartsWith("Use "));
    EXPECT_FALSE(j.contains("solution"));
  }
  EXPECT_FALSE(std::filesystem::exists(a + ".partial"));
}

TEST_F(DataCliTest, SolutionsCheckAndTamperingIsCaught) {
  for (const std::string task : {"addition", "countdown", "modular", "path", "word:ops=4"}) {
    const std::string file = Path("s.jsonl");
    Result gen = RunData("data gen --task " + task + " --n 30 --seed 1 --solutions --out " + file);
    ASSERT_EQ(gen.exit_code, 0) << gen.output;
    for (const std::string& line : Lines(ReadFile(file))) {
      EXPECT_TRUE(nlohmann::json::parse(line).contains("solution")) << line;
    }
    Result check = RunData("data check " + file);
    EXPECT_EQ(check.exit_code, 0) << check.output;
    EXPECT_THAT(check.output,
                HasSubstr(file + ": 30 problems; 30 solutions checked: 30 correct, "
                                 "0 failed; 0 without a solution; 0 malformed lines"));
  }
  // Line 2's solution boxes a wrong answer, line 3 has none, line 4 is not JSON, line 5
  // names an unknown task.
  const std::string file = Path("bad.jsonl");
  ASSERT_EQ(RunData("data gen --task countdown --n 3 --seed 2 --solutions --out " + file).exit_code,
            0);
  std::vector<std::string> lines = Lines(ReadFile(file));
  nlohmann::json second = nlohmann::json::parse(lines[1]);
  std::string solution = second["solution"];
  solution = solution.substr(0, solution.rfind('{') + 1) + "0}";
  second["solution"] = solution;
  lines[1] = second.dump();
  nlohmann::json third = nlohmann::json::parse(lines[2]);
  third.erase("solution");
  lines[2] = third.dump();
  lines.push_back("{not json");
  lines.push_back(R"({"prompt": "x", "answer": "1", "task": "chess", "solution": "\\boxed{1}"})");
  lines.push_back(lines[0]);  // a duplicate id: refused, and not counted as a problem
  {
    std::ofstream out(file, std::ios::trunc);
    for (const std::string& line : lines) out << line << "\n";
  }
  Result check = RunData("data check " + file);
  EXPECT_EQ(check.exit_code, 1) << check.output;
  EXPECT_THAT(check.output, HasSubstr(": 3 problems; 2 solutions checked: 1 correct, 1 failed; 1 "
                                      "without a solution; 3 malformed lines"));
  EXPECT_THAT(check.output,
              HasSubstr("line 2: problem " + second["id"].get<std::string>() +
                        ": boxed answer 0, target " + second["answer"].get<std::string>()));
  EXPECT_THAT(check.output, HasSubstr("line 4: not valid JSON"));
  EXPECT_THAT(check.output, HasSubstr("line 5: unknown task 'chess' (known: "));
  EXPECT_THAT(check.output, HasSubstr("line 6: duplicate id '"));
}

TEST_F(DataCliTest, ErrorsAndUsage) {
  const std::string out = Path("x.jsonl");
  Result bad_task = RunData("data gen --task chess --n 3 --out " + out);
  EXPECT_EQ(bad_task.exit_code, 1);
  EXPECT_THAT(bad_task.output, HasSubstr("deepsearch data gen: unknown task 'chess' (known: "
                                         "addition, countdown, math, modular, path, word)"));
  Result bad_knob = RunData("data gen --task countdown:n=9 --n 3 --out " + out);
  EXPECT_EQ(bad_knob.exit_code, 1);
  EXPECT_THAT(bad_knob.output,
              HasSubstr("task countdown: n must be an integer in [2, 6], got '9'"));
  Result math = RunData("data gen --task math --n 3 --out " + out);
  EXPECT_EQ(math.exit_code, 1);
  EXPECT_THAT(math.output, HasSubstr("task math does not generate problems"));
  Result unwritable = RunData("data gen --task addition --n 3 --out /nonexistent/dir/x.jsonl");
  EXPECT_EQ(unwritable.exit_code, 1);
  EXPECT_THAT(unwritable.output, HasSubstr("/nonexistent/dir/x.jsonl: cannot open for writing"));
  // One-digit sums have 100 distinct problems.
  Result small = RunData("data gen --task addition:digits=1 --n 150 --out " + out);
  EXPECT_EQ(small.exit_code, 1);
  EXPECT_THAT(small.output, HasSubstr("only 100 distinct problems in 4000 draws"));
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_FALSE(std::filesystem::exists(out + ".partial"));
  Result missing = RunData("data check " + Path("missing.jsonl"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.output, HasSubstr("missing.jsonl: cannot open"));

  EXPECT_EQ(RunData("data").exit_code, 2);
  EXPECT_EQ(RunData("data gen --n 3 --out " + out).exit_code, 2);  // --task missing
  EXPECT_EQ(RunData("data gen --task addition --n 0 --out " + out).exit_code, 2);
  EXPECT_EQ(RunData("data gen --task addition --n 3").exit_code, 2);  // --out missing
  EXPECT_EQ(RunData("data check").exit_code, 2);
}

}  // namespace
}  // namespace deepsearch
