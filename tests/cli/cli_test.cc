// The `deepsearch` binary as a user runs it: exit codes and messages.
#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include "cli/deepsearch_config.h"

namespace deepsearch {
namespace {

using ::testing::HasSubstr;

struct Result {
  int exit_code;
  std::string output;  // stdout and stderr together
};

Result RunCli(const std::string& args) {
  const std::string command = std::string(DEEPSEARCH_CLI_PATH) + " " + args + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::string output;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

std::string SourcePath(const std::string& relative) {
  const char* root = std::getenv("DEEPSEARCH_SOURCE_DIR");
  return std::string(root != nullptr ? root : ".") + "/" + relative;
}

TEST(CliTest, HelpListsSubcommands) {
  Result r = RunCli("--help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("Subcommands:"));
  EXPECT_THAT(r.output, HasSubstr("version"));
  EXPECT_THAT(r.output, HasSubstr("config"));
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

}  // namespace
}  // namespace deepsearch
