// `deepsearch sft` as a user runs it: a tiny model trained on worked solutions, the report
// (loss and held-out greedy accuracy before and after), a written model that loads and
// generates, and clear errors for bad input.
#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/cli/cli_runner.h"

namespace deepsearch {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using testing::RunDeepsearch;

std::string Scratch(const std::string& name) {
  const std::string dir =
      ::testing::TempDir() + "/sft_cli_" + std::to_string(::getpid()) + "_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(SftCliTest, TrainsReportsAndWritesAModelThatGenerates) {
  const std::string dir = Scratch("train");
  ASSERT_EQ(RunDeepsearch("model init --preset tiny --seed 3 --out " + dir + "/model").exit_code,
            0);
  const testing::CliRun run =
      RunDeepsearch("sft --model " + dir + "/model --task addition:digits=1 --out " + dir +
                    "/trained --steps 40 --batch 16 --eval 8 --no-progress");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  // "trained 40 steps (N response tokens, R tokens/s); loss A -> B"
  EXPECT_THAT(run.out, HasSubstr("trained 40 steps"));
  const size_t arrow = run.out.find(" -> ");
  ASSERT_NE(arrow, std::string::npos) << run.out;
  const size_t loss_at = run.out.rfind("loss ", arrow);
  const double first = std::stod(run.out.substr(loss_at + 5, arrow - loss_at - 5));
  const double last = std::stod(run.out.substr(arrow + 4));
  EXPECT_LT(last, 0.7 * first) << run.out;
  EXPECT_THAT(run.out, HasSubstr("greedy accuracy on 8 held-out problems:"));
  EXPECT_THAT(run.out, HasSubstr("wrote " + dir + "/trained"));

  // The written model is a model directory like any other.
  const testing::CliRun gen = RunDeepsearch("generate --model " + dir +
                                            "/trained --prompt '<bos>3+4=' --max-tokens 8 --json");
  EXPECT_EQ(gen.exit_code, 0) << gen.err;
  std::filesystem::remove_all(dir);
}

TEST(SftCliTest, BadInputIsNamed) {
  const std::string dir = Scratch("bad");
  ASSERT_EQ(RunDeepsearch("model init --preset tiny --out " + dir + "/model").exit_code, 0);
  testing::CliRun run = RunDeepsearch("sft --model " + dir + "/model --task sudoku --out " + dir +
                                      "/out --steps 1 --no-progress");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("sudoku"));
  run = RunDeepsearch("sft --model " + dir + "/missing --task addition --out " + dir +
                      "/out --steps 1 --no-progress");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr(dir + "/missing"));
  run = RunDeepsearch("sft --model " + dir + "/model --task math --out " + dir +
                      "/out --steps 1 --no-progress");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, MatchesRegex("(.|\n)*(generate|generat)(.|\n)*"));
  run = RunDeepsearch("sft --task addition --out " + dir + "/out");
  EXPECT_EQ(run.exit_code, 2);  // --model is required
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace deepsearch
