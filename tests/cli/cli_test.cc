// The `deepsearch` binary as a user runs it: exit codes and messages.
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/deepsearch_config.h"
#include "tests/cli/cli_runner.h"

namespace deepsearch {
namespace {

using ::testing::HasSubstr;

struct Result {
  int exit_code;
  std::string output;  // stdout and stderr together
};

Result RunCli(const std::string& args) {
  const testing::CliRun r = testing::RunDeepsearch(args);
  return {r.exit_code, r.out + r.err};
}

using SplitResult = testing::CliRun;
using testing::ReadFile;
using testing::SourcePath;

// Runs the binary with `input` on stdin, keeping stdout and stderr apart.
SplitResult RunCliWithInput(const std::string& args, const std::string& input) {
  return testing::RunDeepsearch(args, input);
}

const char kQwenTokenizer[] = "tests/data/tokenizers/qwen3/tokenizer.json";

TEST(CliTest, HelpListsSubcommands) {
  Result r = RunCli("--help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("Subcommands:"));
  EXPECT_THAT(r.output, HasSubstr("version"));
  EXPECT_THAT(r.output, HasSubstr("config"));
  EXPECT_THAT(r.output, HasSubstr("tokenize"));
}

TEST(CliTest, UsageErrorsExitWithTwo) {
  Result none = RunCli("");
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.output, HasSubstr("A subcommand is required"));
  EXPECT_EQ(RunCli("frobnicate").exit_code, 2);
  EXPECT_EQ(RunCli("config validate").exit_code, 2);  // FILE missing
  EXPECT_EQ(RunCli("--log-level loud version").exit_code, 2);
}

TEST(CliTest, VersionReportsBuildAndRuntime) {
  Result r = RunCli("version");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("deepsearch 0.1.0"));
  EXPECT_THAT(r.output, HasSubstr("torch "));
  EXPECT_THAT(r.output, HasSubstr("threads: 1 intra-op / 1 inter-op"));

  Result j = RunCli("version --json");
  ASSERT_EQ(j.exit_code, 0) << j.output;
  const nlohmann::json info = nlohmann::json::parse(j.output);
  EXPECT_EQ(info["version"], "0.1.0");
  EXPECT_EQ(info["cxx_standard"], 202002);
  EXPECT_EQ(info["torch"]["intra_op_threads"], 1);
  EXPECT_TRUE(info.contains("grpc"));
}

TEST(CliTest, ValidateAcceptsGoodFiles) {
  Result r = RunCli("config validate " + SourcePath("configs/deepsearch.yaml"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("deepsearch.yaml: OK"));
  EXPECT_EQ(RunCli("config validate " + SourcePath("tests/data/config/good.json")).exit_code, 0);
}

TEST(CliTest, ValidateNamesEveryBadKey) {
  Result r = RunCli("config validate " + SourcePath("tests/data/config/bad_values.yaml"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("bad_values.yaml: 4 errors"));
  EXPECT_THAT(r.output, HasSubstr("logging.level (line 2): expected one of {debug, info, warning, "
                                  "error, off}, got 'loud'"));
  EXPECT_THAT(r.output,
              HasSubstr("runtime.torch_threads (line 8): expected an integer, got 'two'"));
  EXPECT_THAT(r.output, HasSubstr("rpc.max_receive_message_bytes (line 4): expected an integer in "
                                  "[1024, 2147483647], got 12"));
  EXPECT_THAT(r.output,
              HasSubstr("rpc.tls.enabeld (line 6): unknown key (did you mean 'enabled'?)"));
}

TEST(CliTest, ValidateReportsMissingFilesAndBadOverrides) {
  Result missing = RunCli("config validate /nonexistent/deepsearch.yaml");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.output,
              HasSubstr("config file /nonexistent/deepsearch.yaml: cannot open for reading"));

  Result bad = RunCli("config validate --set rpc.tls.enabled=maybe " +
                      SourcePath("configs/deepsearch.yaml"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(
      bad.output,
      HasSubstr("rpc.tls.enabled (--set): expected a boolean (true or false), got 'maybe'"));

  Result cross = RunCli("config validate --set rpc.tls.require_client_cert=true " +
                        SourcePath("configs/deepsearch.yaml"));
  EXPECT_EQ(cross.exit_code, 1);
  EXPECT_THAT(cross.output, HasSubstr("rpc.tls.require_client_cert: needs enabled: true"));
}

// configs/deepsearch.yaml is the output of `deepsearch config show`: every key with its
// default and help text. Regenerate it with
//   build/cli/deepsearch config show > configs/deepsearch.yaml
TEST(CliTest, ShippedDefaultConfigIsUpToDate) {
  std::ifstream in(SourcePath("configs/deepsearch.yaml"));
  std::stringstream shipped;
  shipped << in.rdbuf();
  EXPECT_EQ(shipped.str(), DocumentConfig(DeepSearchConfig{}));
  Result show = RunCli("config show");
  EXPECT_EQ(show.exit_code, 0);
  EXPECT_EQ(show.output, shipped.str());
}

TEST(CliTest, ShowAppliesOverrides) {
  Result r = RunCli("config show --set runtime.torch_threads=4");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("  torch_threads: 4\n"));
}

TEST(CliTest, TokenizeEncodesEachLine) {
  const std::string args = "tokenize --tokenizer " + SourcePath(kQwenTokenizer);
  // "Hello" is 9707, " world" 1879; <|im_end|> is text unless special tokens are allowed.
  SplitResult plain = RunCliWithInput(args, "Hello world\n<|im_end|>\n\n");
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out, "[9707,1879]\n[27,91,318,6213,91,29]\n[]\n");
  SplitResult special = RunCliWithInput(args + " --allow-special", "Hello world\n<|im_end|>\n");
  EXPECT_EQ(special.exit_code, 0) << special.err;
  EXPECT_EQ(special.out, "[9707,1879]\n[151645]\n");
}

TEST(CliTest, TokenizeJsonLinesCarryLineBreaks) {
  // With --json each line is a JSON string: a text with a line break and a quote in it.
  // The ids are the tokenizers library's for the same texts.
  const std::string args = "tokenize --json --tokenizer " + SourcePath(kQwenTokenizer);
  SplitResult r = RunCliWithInput(args, "\"Hello\\nworld\"\n\"a\\\"b\"\n[1]\n\"x\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "[9707,198,14615]\n[64,1,65]\nnull\nnull\n");
  EXPECT_THAT(r.err, HasSubstr("line 3: expected a JSON string"));
  EXPECT_THAT(r.err, HasSubstr("line 4: not a JSON string"));
}

TEST(CliTest, TokenizeDecodes) {
  const std::string args = "tokenize --decode --tokenizer " + SourcePath(kQwenTokenizer);
  SplitResult r = RunCliWithInput(args, "[9707,1879]\n[151645]\n[]\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "\"Hello world\"\n\"<|im_end|>\"\n\"\"\n");
  SplitResult skipped = RunCliWithInput(args + " --skip-special", "[9707,151645,1879]\n");
  EXPECT_EQ(skipped.exit_code, 0) << skipped.err;
  EXPECT_EQ(skipped.out, "\"Hello world\"\n");
}

TEST(CliTest, TokenizeReportsBadLinesAndGoesOn) {
  const std::string args = "tokenize --decode --tokenizer " + SourcePath(kQwenTokenizer);
  SplitResult r = RunCliWithInput(args, "[9707]\nnot json\n[99999999]\n[1879]\n[1,\"a\"]\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "\"Hello\"\nnull\nnull\n\" world\"\nnull\n");
  EXPECT_THAT(r.err, HasSubstr("line 2: not JSON"));
  EXPECT_THAT(r.err, HasSubstr("line 3: element 0: id 99999999 is not in the vocabulary"));
  EXPECT_THAT(r.err, HasSubstr("line 5: element 1 is not an integer"));
  EXPECT_THAT(r.err, HasSubstr("3 of 5 lines failed"));

  SplitResult encode = RunCliWithInput("tokenize --tokenizer " + SourcePath(kQwenTokenizer),
                                       "Hello\nbad \xFF byte\n");
  EXPECT_EQ(encode.exit_code, 1);
  EXPECT_EQ(encode.out, "[9707]\nnull\n");
  EXPECT_THAT(encode.err, HasSubstr("line 2: text to encode is not valid UTF-8 at byte 4"));
}

TEST(CliTest, TokenizeUsageAndMissingFile) {
  EXPECT_EQ(RunCli("tokenize").exit_code, 2);  // --tokenizer missing
  SplitResult missing = RunCliWithInput("tokenize --tokenizer /nonexistent/tokenizer.json", "x\n");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("tokenizer file /nonexistent/tokenizer.json: cannot open"));
}

}  // namespace
}  // namespace deepsearch

namespace deepsearch {
namespace {

TEST(CliModelTest, InitThenGenerate) {
  const std::string dir = ::testing::TempDir() + "/cli_model_" + std::to_string(::getpid());
  Result init = RunCli("model init --preset tiny --seed 4 --out " + dir + " --force");
  ASSERT_EQ(init.exit_code, 0) << init.output;
  EXPECT_THAT(init.output, HasSubstr("wrote a tiny model to " + dir));
  EXPECT_EQ(RunCli("model init --preset tiny --out " + dir).exit_code, 1);  // exists: refused
  // --if-missing (init containers): an existing model is left exactly as it is.
  const std::string weights = dir + "/model.safetensors";
  const auto before = std::filesystem::last_write_time(weights);
  Result again = RunCli("model init --preset small --out " + dir + " --if-missing");
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_THAT(again.output, HasSubstr("already holds a model"));
  EXPECT_EQ(std::filesystem::last_write_time(weights), before);
  EXPECT_EQ(
      RunCli("sft --model " + dir + " --out " + dir + " --task addition --if-missing").exit_code,
      0);
  EXPECT_EQ(std::filesystem::last_write_time(weights), before);
  EXPECT_EQ(RunCli("model init --preset huge --out " + dir).exit_code, 2);

  Result text =
      RunCli("generate --model " + dir + " --prompt '<bos>12+34=' --n 3 --max-tokens 8 --seed 7");
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_THAT(text.output, HasSubstr("--- sample 3/3 ("));
  // JSON: one object per sample, with as many log-probs and entropies as tokens; the same
  // seed gives the same samples.
  const std::string args =
      "generate --model " + dir + " --prompt '<bos>7*8=' --n 2 --max-tokens 6 --seed 9 --json";
  Result a = RunCli(args), b = RunCli(args);
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_EQ(a.output, b.output);
  std::istringstream lines(a.output);
  std::string line;
  int samples = 0;
  while (std::getline(lines, line)) {
    const nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_EQ(j["tokens"].size(), j["logprobs"].size());
    EXPECT_EQ(j["tokens"].size(), j["entropies"].size());
    EXPECT_LE(j["tokens"].size(), 6u);
    ++samples;
  }
  EXPECT_EQ(samples, 2);

  Result bad = RunCli("generate --model " + dir + " --prompt x --temperature 0");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.output, HasSubstr("sampling.temperature must be > 0"));
  Result missing = RunCli("generate --model /nonexistent/model --prompt x");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.output, HasSubstr("model directory /nonexistent/model does not exist"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace deepsearch
