#include "common/core/config.h"

#include <cstdio>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace deepsearch {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

enum class Backtrace { kGlobal, kUct };

struct Search {
  int32_t max_depth = 64;
  double lambda = 0.4;
  std::string delimiter;

  void Bind(ConfigBinder& b) {
    b.Field("max_depth", max_depth, "d_T").Range(1, 1024);
    b.Field("lambda", lambda, "frontier weight").Range(0.0, 10.0);
    b.Field("delimiter", delimiter, "step delimiter");
  }
  friend bool operator==(const Search&, const Search&) = default;
};

struct TestConfig {
  bool enabled = false;
  int64_t count = 3;
  uint64_t seed = 7;
  float ratio = 0.5f;
  std::string name = "tree";
  absl::Duration timeout = absl::Seconds(30);
  std::vector<int64_t> ids;
  std::vector<double> weights = {1.0, 2.5};
  std::vector<std::string> tags;
  Backtrace backtrace = Backtrace::kGlobal;
  Search search;
  int64_t low = 0;
  int64_t high = 10;

  void Bind(ConfigBinder& b) {
    b.Field("enabled", enabled, "switch");
    b.Field("count", count, "how many").Min(0);
    b.Field("seed", seed, "seed");
    b.Field("ratio", ratio, "a ratio").Range(0.0f, 1.0f);
    b.Field("name", name, "a name").NonEmpty();
    b.Field("timeout", timeout, "a timeout").Positive();
    b.Field("ids", ids, "ids");
    b.Field("weights", weights, "weights");
    b.Field("tags", tags, "tags");
    b.Enum("backtrace", backtrace, {{"global", Backtrace::kGlobal}, {"uct", Backtrace::kUct}},
           "where to go next");
    b.Section("search", search, "search constants");
    b.Field("low", low, "lower end");
    b.Field("high", high, "upper end");
    b.Require(low <= high, "high", "must be >= low");
  }
  friend bool operator==(const TestConfig&, const TestConfig&) = default;
};

absl::Status ParseError(std::string_view text, std::vector<std::string> overrides = {}) {
  return ParseConfigText<TestConfig>(text, "test.yaml", overrides).status();
}

// Readable test names and failure output for the table below.
struct BadValueCase;
void PrintTo(const BadValueCase& c, std::ostream* os);

TEST(ConfigTest, GoodFileSetsEveryType) {
  absl::StatusOr<TestConfig> c = ParseConfigText<TestConfig>(R"(
enabled: yes
count: 12
seed: 18446744073709551615
ratio: 0.25
name: deep
timeout: 1m30s
ids: [1, -2, 3]
weights: []
tags: [a, "b c"]
backtrace: UCT
search:
  max_depth: 16
  lambda: 2
  delimiter: "\n\n"
low: -4
high: -4
)",
                                                             "test.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->enabled);
  EXPECT_EQ(c->count, 12);
  EXPECT_EQ(c->seed, 18446744073709551615ull);
  EXPECT_FLOAT_EQ(c->ratio, 0.25f);
  EXPECT_EQ(c->name, "deep");
  EXPECT_EQ(c->timeout, absl::Seconds(90));
  EXPECT_EQ(c->ids, (std::vector<int64_t>{1, -2, 3}));
  EXPECT_TRUE(c->weights.empty());
  EXPECT_EQ(c->tags, (std::vector<std::string>{"a", "b c"}));
  EXPECT_EQ(c->backtrace, Backtrace::kUct);
  EXPECT_EQ(c->search.max_depth, 16);
  EXPECT_DOUBLE_EQ(c->search.lambda, 2.0);
  EXPECT_EQ(c->search.delimiter, "\n\n");
  EXPECT_EQ(c->low, -4);
}

TEST(ConfigTest, AbsentKeysKeepDefaults) {
  absl::StatusOr<TestConfig> c = ParseConfigText<TestConfig>("count: 5\n", "test.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  TestConfig expected;
  expected.count = 5;
  EXPECT_EQ(*c, expected);
  // An empty document is all defaults.
  EXPECT_EQ(*ParseConfigText<TestConfig>("", "empty.yaml"), TestConfig{});
}

TEST(ConfigTest, JsonIsAccepted) {
  absl::StatusOr<TestConfig> c = ParseConfigText<TestConfig>(
      R"({"count": 9, "search": {"max_depth": 8}, "tags": ["x"]})", "t.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->count, 9);
  EXPECT_EQ(c->search.max_depth, 8);
  EXPECT_EQ(c->tags, std::vector<std::string>{"x"});
}

struct BadValueCase {
  std::string yaml;
  std::string expected;  // the complete error line
};

void PrintTo(const BadValueCase& c, std::ostream* os) { *os << c.yaml; }

class ConfigBadValueTest : public ::testing::TestWithParam<BadValueCase> {};

TEST_P(ConfigBadValueTest, NamesKeyExpectationAndValue) {
  absl::Status s = ParseError(GetParam().yaml);
  ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(s.message(), absl::StrCat("config test.yaml: 1 error\n  ", GetParam().expected));
}

INSTANTIATE_TEST_SUITE_P(
    EachKind, ConfigBadValueTest,
    ::testing::Values(
        BadValueCase{"count: abc", "count (line 1): expected an integer, got 'abc'"},
        BadValueCase{"count: 3.5", "count (line 1): expected an integer, got '3.5'"},
        BadValueCase{"count: -1", "count (line 1): expected an integer >= 0, got -1"},
        BadValueCase{"count: [1]", "count (line 1): expected an integer, got a list"},
        BadValueCase{"count:\n  a: 1", "count (line 2): expected an integer, got a map"},
        BadValueCase{"count: 99999999999999999999",
                     "count (line 1): expected an integer, got '99999999999999999999'"},
        BadValueCase{"seed: -3", "seed (line 1): expected a non-negative integer, got '-3'"},
        BadValueCase{"enabled: maybe",
                     "enabled (line 1): expected a boolean (true or false), got 'maybe'"},
        BadValueCase{"ratio: 1.5", "ratio (line 1): expected a number in [0, 1], got 1.5"},
        BadValueCase{"ratio: 1e40",
                     "ratio (line 1): expected a number within float range, got 1e+40"},
        BadValueCase{"ratio: .nan", "ratio (line 1): expected a finite number, got '.nan'"},
        BadValueCase{"name: ''", "name (line 1): expected a non-empty string, got an empty string"},
        BadValueCase{"name: [a]", "name (line 1): expected a string, got a list"},
        BadValueCase{"timeout: 30",
                     "timeout (line 1): expected a duration such as 30s, 1.5m or 250ms, got '30'"},
        BadValueCase{"timeout: -5s", "timeout (line 1): expected a duration > 0, got -5s"},
        BadValueCase{"ids: [1, x, 3]", "ids[1] (line 1): expected an integer, got 'x'"},
        BadValueCase{"ids: 5", "ids (line 1): expected a list of integers, got '5'"},
        BadValueCase{"backtrace: dfs",
                     "backtrace (line 1): expected one of {global, uct}, got 'dfs'"},
        BadValueCase{"search: 3", "search (line 1): expected a section (a map of keys), got '3'"},
        BadValueCase{"search:\n  max_depth: 0",
                     "search.max_depth (line 2): expected an integer in [1, 1024], got 0"},
        BadValueCase{"search:\n  max_depth: 3000000000",
                     "search.max_depth (line 2): expected an integer in [-2147483648, 2147483647], "
                     "got 3000000000"},
        BadValueCase{"search:\n  lambda: -0.5",
                     "search.lambda (line 2): expected a number in [0, 10], got -0.5"},
        BadValueCase{"low: 5\nhigh: 4", "high: must be >= low"},
        BadValueCase{"search:\n  max_dpeth: 3",
                     "search.max_dpeth (line 2): unknown key (did you mean 'max_depth'?)"},
        BadValueCase{"cuont: 3", "cuont (line 1): unknown key (did you mean 'count'?)"},
        BadValueCase{
            "search:\n  zzz: 1",
            "search.zzz (line 2): unknown key (known keys: max_depth, lambda, delimiter)"}));

TEST(ConfigTest, ReportsEveryErrorAtOnce) {
  absl::Status s = ParseError("count: x\nsearch:\n  max_depth: 0\nbogus: 1\n");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(
      s.message(),
      "config test.yaml: 3 errors\n"
      "  count (line 1): expected an integer, got 'x'\n"
      "  search.max_depth (line 3): expected an integer in [1, 1024], got 0\n"
      "  bogus (line 4): unknown key (known keys: enabled, count, seed, ratio, name, timeout, ids, "
      "weights, tags, backtrace, search, low, high)");
}

TEST(ConfigTest, SyntaxErrorNamesLineAndColumn) {
  absl::Status s = ParseError("count: 3\nsearch: [1, 2\n");
  ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("config test.yaml: YAML syntax error at line 3"));
}

TEST(ConfigTest, TopLevelMustBeAMap) {
  absl::Status s = ParseError("- 1\n- 2\n");
  EXPECT_EQ(s.message(), "config test.yaml: the top level must be a map of keys, got a list");
}

TEST(ConfigTest, OverridesApplyBeforeValidation) {
  absl::StatusOr<TestConfig> c = ParseConfigText<TestConfig>(
      "count: 1\n", "t.yaml", {"count=4", "search.max_depth=8", "tags=[p, q]"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->count, 4);
  EXPECT_EQ(c->search.max_depth, 8);
  EXPECT_EQ(c->tags, (std::vector<std::string>{"p", "q"}));

  EXPECT_THAT(std::string(ParseError("", {"search.max_depth=0"}).message()),
              HasSubstr("search.max_depth (--set): expected an integer in [1, 1024], got 0"));
  EXPECT_THAT(std::string(ParseError("", {"count"}).message()),
              HasSubstr("override 'count': expected KEY=VALUE"));
  // With no `count` in the file the override creates a section, which then is no integer.
  EXPECT_THAT(std::string(ParseError("", {"count.x=1"}).message()),
              HasSubstr("count: expected an integer, got a map"));
  EXPECT_THAT(std::string(ParseError("count: 2", {"count.x=1"}).message()),
              HasSubstr("'count' is not a section"));
  EXPECT_THAT(std::string(ParseError("", {"serach.max_depth=1"}).message()),
              HasSubstr("serach: unknown key (did you mean 'search'?)"));
}

TEST(ConfigTest, DocumentRoundTrips) {
  TestConfig c;
  c.enabled = true;
  c.count = 42;
  c.ratio = 0.125f;
  c.name = "quote\" and\nnewline";
  c.timeout = absl::Milliseconds(1500);
  c.ids = {5, 6};
  c.weights = {0.1, 1e-6};
  c.tags = {"a b", ""};
  c.backtrace = Backtrace::kUct;
  c.search.lambda = 0.3;
  const std::string doc = DocumentConfig(c);
  EXPECT_THAT(doc, HasSubstr("# a ratio (range [0, 1])\nratio: 0.125\n"));
  EXPECT_THAT(doc, HasSubstr("# where to go next (one of: global, uct)\nbacktrace: uct\n"));
  EXPECT_THAT(
      doc, HasSubstr("# search constants\nsearch:\n  # d_T (range [1, 1024])\n  max_depth: 64\n"));
  absl::StatusOr<TestConfig> back = ParseConfigText<TestConfig>(doc, "doc.yaml");
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << doc;
  EXPECT_EQ(*back, c);
}

TEST(ConfigTest, LoadConfigFileReadsAndNamesMissingFiles) {
  const std::string path = ::testing::TempDir() + "/config_test.yaml";
  {
    std::ofstream out(path);
    out << "count: 11\n";
  }
  absl::StatusOr<TestConfig> c = LoadConfigFile<TestConfig>(path);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->count, 11);
  std::remove(path.c_str());

  absl::Status missing = LoadConfigFile<TestConfig>("/nonexistent/x.yaml").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.message(), "config file /nonexistent/x.yaml: cannot open for reading");
}

TEST(ConfigTest, ValidFileHasNoErrorText) {
  absl::Status s = ParseError("count: 0\nratio: 1\n");
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("error")));
}

}  // namespace
}  // namespace deepsearch
