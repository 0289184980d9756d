// Properties every generated task family must have, over many problems per spec: the solver
// and the verifier agree, mutated solutions are rejected for the right reason, generation is
// deterministic, specs round-trip, and garbage never crashes or verifies.
#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_split.h"

#include "common/core/rng.h"
#include "common/tasks/task.h"

namespace deepsearch {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::unique_ptr<TaskFamily> Make(const std::string& spec) {
  absl::StatusOr<std::unique_ptr<TaskFamily>> family = MakeTaskFamily(spec);
  EXPECT_TRUE(family.ok()) << spec << ": " << family.status();
  return family.ok() ? std::move(*family) : nullptr;
}

bool IsTaskAlphabet(const std::string& text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c == '\n' || (c >= 0x20 && c <= 0x7e); });
}

// A worked solution split into its step lines and the boxed line.
struct Lines {
  std::vector<std::string> steps;
  std::string box;
};

Lines SplitSolution(const std::string& solution) {
  std::vector<std::string> all = absl::StrSplit(solution, '\n');
  Lines lines;
  lines.box = all.back();
  all.pop_back();
  lines.steps = std::move(all);
  return lines;
}

std::string Join(const Lines& lines) {
  std::string out;
  for (const std::string& s : lines.steps) out += s + "\n";
  return out + lines.box;
}

// The last digit of the last number in `line`, changed to another digit.
std::string ChangeLastNumber(std::string line, Rng& rng) {
  const size_t pos = line.find_last_of("0123456789");
  const char old = line[pos];
  line[pos] = static_cast<char>('0' + (old - '0' + rng.UniformInt(1, 9)) % 10);
  return line;
}

struct SpecCase {
  std::string spec;
  int problems;
  // How a wrong boxed answer is reported (the word family reports the math grader's reason).
  std::string boxed_reason_prefix;
};

std::ostream& operator<<(std::ostream& os, const SpecCase& c) { return os << c.spec; }

class FamilyTest : public ::testing::TestWithParam<SpecCase> {};

// Generate -> Solve -> Verify over many problems, and the mutations of each worked solution.
TEST_P(FamilyTest, SolverAndVerifierAgreeAndMutationsFail) {
  const SpecCase& c = GetParam();
  const std::unique_ptr<TaskFamily> family = Make(c.spec);
  ASSERT_NE(family, nullptr);
  ASSERT_TRUE(family->generates());
  const std::string word = "word";
  const bool is_word = family->name() == word;
  Rng rng(20240601);
  Rng mutate(99);
  for (int i = 0; i < c.problems; ++i) {
    Rng stream = rng.Fork(i);
    const Problem p = family->Generate(stream);
    ASSERT_EQ(p.task, family->spec());
    ASSERT_EQ(p.id, StableProblemId(p.prompt, p.answer));
    ASSERT_TRUE(IsTaskAlphabet(p.prompt)) << p.prompt;
    ASSERT_TRUE(p.prompt.ends_with("\n")) << p.prompt;
    ASSERT_FALSE(p.answer.empty());
    const std::optional<std::string> solution = family->Solve(p);
    ASSERT_TRUE(solution.has_value()) << p.prompt;
    ASSERT_TRUE(IsTaskAlphabet(*solution));
    const Verdict ok = family->Verify(p, *solution);
    ASSERT_TRUE(ok.correct) << p.prompt << *solution << "\n-> " << ok.reason;
    ASSERT_EQ(ok.reward, 1.0);
    ASSERT_EQ(ok.reason, "");

    const Lines lines = SplitSolution(*solution);
    ASSERT_FALSE(lines.steps.empty()) << *solution;
    ASSERT_EQ(lines.box, "\\boxed{" + ok.predicted + "}");

    // One number changed in one step: that step is the first failure.
    {
      Lines changed = lines;
      const size_t k = mutate.UniformInt(0, static_cast<int64_t>(lines.steps.size()) - 1);
      changed.steps[k] = ChangeLastNumber(changed.steps[k], mutate);
      const Verdict v = family->Verify(p, Join(changed));
      ASSERT_FALSE(v.correct) << Join(changed);
      ASSERT_EQ(v.reward, -1.0);
      ASSERT_THAT(v.reason, StartsWith("step " + std::to_string(k + 1) + ": ")) << Join(changed);
    }
    // The last step dropped. (A word problem whose last step adds to 0 is still solved by the
    // step before: that shorter response is a correct one.)
    {
      Lines dropped = lines;
      dropped.steps.pop_back();
      const bool still_valid =
          is_word && !dropped.steps.empty() && dropped.steps.back().ends_with("=" + p.answer);
      const Verdict v = family->Verify(p, Join(dropped));
      if (!still_valid) {
        ASSERT_FALSE(v.correct) << Join(dropped);
        ASSERT_FALSE(v.reason.empty());
      }
    }
    // Every step dropped.
    {
      const Verdict v = family->Verify(p, lines.box);
      ASSERT_FALSE(v.correct);
      if (family->name() == "addition" || family->name() == "modular") {
        ASSERT_THAT(v.reason, StartsWith("only 0 steps"));
      } else {
        ASSERT_EQ(v.reason, "no steps");
      }
    }
    // A different boxed answer.
    {
      Lines swapped = lines;
      swapped.box = "\\boxed{" + ChangeLastNumber(ok.predicted, mutate) + "}";
      const Verdict v = family->Verify(p, Join(swapped));
      ASSERT_FALSE(v.correct) << Join(swapped);
      ASSERT_THAT(v.reason, StartsWith(c.boxed_reason_prefix)) << Join(swapped);
    }
    // Truncated anywhere.
    {
      const size_t cut = mutate.UniformInt(0, static_cast<int64_t>(solution->size()) - 1);
      const Verdict v = family->Verify(p, solution->substr(0, cut));
      ASSERT_FALSE(v.correct);
      ASSERT_THAT(v.reason, ::testing::AnyOf("no \\boxed{} answer on the last line",
                                             "the \\boxed{ on the last line is not closed"));
    }
  }
}

// Near misses that can never be right, and random garbage: rejected, never a crash.
TEST_P(FamilyTest, GarbageAndNearMissesNeverVerify) {
  const std::unique_ptr<TaskFamily> family = Make(GetParam().spec);
  ASSERT_NE(family, nullptr);
  Rng rng(7);
  const std::vector<std::string> pieces = {
      "0", "1", "2", "3",       "5",       "7",       "9",        "12", "+", "-",
      "*", "/", "=", " ",       "\n",      "\n",      "\\boxed{", "}",  "{", "A",
      "B", "C", "-", " total ", " write ", " carry ", " mod ",    "x"};
  for (int i = 0; i < 300; ++i) {
    Rng stream = rng.Fork(i);
    const Problem p = family->Generate(stream);
    const std::string solution = *family->Solve(p);
    // Two lines merged into one.
    const size_t newline = solution.find('\n');
    std::string merged = solution;
    merged.erase(newline, 1);
    EXPECT_FALSE(family->Verify(p, merged).correct) << merged;
    // A character outside the alphabet anywhere.
    for (const char bad : {'\t', '\r', '\0', '\x7f', '\xe2', '\xff'}) {
      std::string tainted = solution;
      tainted.insert(rng.UniformInt(0, static_cast<int64_t>(solution.size())), 1, bad);
      const Verdict v = family->Verify(p, tainted);
      EXPECT_FALSE(v.correct);
      EXPECT_THAT(v.reason, HasSubstr("is not printable ASCII"));
    }
    // Random single-character edits: any verdict, but no crash.
    for (int e = 0; e < 20; ++e) {
      std::string edited = solution;
      const size_t at = rng.UniformInt(0, static_cast<int64_t>(edited.size()) - 1);
      edited[at] = static_cast<char>(rng.UniformInt(0, 255));
      family->Verify(p, edited);
      edited.erase(rng.UniformInt(0, static_cast<int64_t>(edited.size()) - 1), 1);
      family->Verify(p, edited);
    }
    // Random bytes, and random sequences of the family's symbols.
    std::string bytes;
    for (int64_t n = rng.UniformInt(0, 200); n > 0; --n) {
      bytes += static_cast<char>(rng.UniformInt(0, 255));
    }
    EXPECT_FALSE(family->Verify(p, bytes).correct);
    std::string symbols;
    for (int64_t n = rng.UniformInt(0, 60); n > 0; --n) {
      symbols += pieces[rng.UniformInt(0, static_cast<int64_t>(pieces.size()) - 1)];
    }
    if (rng.Bernoulli(0.5)) symbols += "\n\\boxed{" + p.answer + "}";
    EXPECT_FALSE(family->Verify(p, symbols).correct) << symbols;
    // The right answer with the prompt echoed as steps.
    EXPECT_FALSE(family->Verify(p, p.prompt + "\\boxed{" + p.answer + "}").correct);
  }
  // Garbage problems are refused with a reason, not a crash. (The word family verifies any
  // prompt: its steps may only use the prompt's numbers, and these prompts have none of 1, 2.)
  for (const std::string& prompt : {std::string(), std::string("\xff\n"), std::string("Use 3")}) {
    Problem p;
    p.prompt = prompt;
    p.answer = "3";
    const Verdict v = family->Verify(p, "1+2=3\n\\boxed{3}");
    EXPECT_FALSE(v.correct);
    EXPECT_THAT(v.reason, StartsWith(family->name() == "word" ? "step 1: " : "problem: "));
    EXPECT_EQ(family->Solve(p), std::nullopt);
  }
}

TEST_P(FamilyTest, GenerationIsDeterministicAndSpecsRoundTrip) {
  const std::unique_ptr<TaskFamily> family = Make(GetParam().spec);
  ASSERT_NE(family, nullptr);
  const std::unique_ptr<TaskFamily> again = Make(family->spec());
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->spec(), family->spec());
  EXPECT_EQ(again->name(), family->name());
  // The canonical spec lists every knob, keys sorted.
  const std::string spec = family->spec();
  ASSERT_THAT(spec, StartsWith(family->name() + ":"));
  std::vector<std::string> keys;
  for (const absl::string_view kv : absl::StrSplit(spec.substr(spec.find(':') + 1), ',')) {
    keys.emplace_back(kv.substr(0, kv.find('=')));
  }
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end())) << spec;

  Rng a(5), b(5), c(6);
  int same = 0;
  for (int i = 0; i < 50; ++i) {
    const Problem pa = family->Generate(a);
    EXPECT_EQ(pa, again->Generate(b));
    if (pa == family->Generate(c)) ++same;
  }
  EXPECT_LT(same, 10);
}

INSTANTIATE_TEST_SUITE_P(
    Families, FamilyTest,
    ::testing::Values(SpecCase{"countdown", 10000, "boxed answer "},
                      SpecCase{"countdown:n=5,max=50,max_target=500", 10000, "boxed answer "},
                      SpecCase{"countdown:n=6,use_all=false", 10000, "boxed answer "},
                      SpecCase{"countdown:n=6,max=100,max_target=1000", 10000, "boxed answer "},
                      SpecCase{"addition", 10000, "boxed answer "},
                      SpecCase{"addition:digits=12,operands=4", 10000, "boxed answer "},
                      SpecCase{"modular", 10000, "boxed answer "},
                      SpecCase{"modular:length=32,modulus=997", 10000, "boxed answer "},
                      SpecCase{"word", 10000, "'"}, SpecCase{"word:max=200,ops=8", 10000, "'"},
                      SpecCase{"path", 10000, "boxed answer "},
                      SpecCase{"path:degree=4,max_weight=50,nodes=20", 10000, "boxed answer "},
                      SpecCase{"path:nodes=10,optimal=false", 10000, "boxed answer "}),
    [](const ::testing::TestParamInfo<SpecCase>& info) {
      std::string name;
      for (const char ch : info.param.spec) name += std::isalnum(ch) ? ch : '_';
      return name;
    });

TEST(TaskFamiliesTest, RegistryListsEveryFamily) {
  EXPECT_EQ(TaskFamilyNames(),
            (std::vector<std::string>{"addition", "countdown", "math", "modular", "path", "word"}));
}

TEST(TaskFamiliesTest, KnobsAreRangeCheckedWithClearErrors) {
  auto error = [](const std::string& spec) {
    return std::string(MakeTaskFamily(spec).status().message());
  };
  EXPECT_EQ(error("countdown:n=7"), "task countdown: n must be an integer in [2, 6], got '7'");
  EXPECT_EQ(error("countdown:max=0"),
            "task countdown: max must be an integer in [1, 1000], got '0'");
  EXPECT_EQ(error("countdown:max_target=x"),
            "task countdown: max_target must be an integer in [1, 1000000], got 'x'");
  EXPECT_EQ(error("countdown:use_all=maybe"),
            "task countdown: use_all must be true or false, got 'maybe'");
  EXPECT_EQ(error("addition:digits=13"),
            "task addition: digits must be an integer in [1, 12], got '13'");
  EXPECT_EQ(error("addition:operands=1"),
            "task addition: operands must be an integer in [2, 4], got '1'");
  EXPECT_EQ(error("modular:length=0"),
            "task modular: length must be an integer in [1, 32], got '0'");
  EXPECT_EQ(error("modular:modulus=998"),
            "task modular: modulus must be an integer in [2, 997], got '998'");
  EXPECT_EQ(error("word:ops=9"), "task word: ops must be an integer in [1, 8], got '9'");
  EXPECT_EQ(error("word:max=1"), "task word: max must be an integer in [2, 1000], got '1'");
  EXPECT_EQ(error("path:nodes=21"), "task path: nodes must be an integer in [3, 20], got '21'");
  EXPECT_EQ(error("path:degree=1"), "task path: degree must be an integer in [2, 19], got '1'");
  EXPECT_EQ(error("path:max_weight=100"),
            "task path: max_weight must be an integer in [1, 99], got '100'");
  EXPECT_EQ(error("path:optimal=2"), "task path: optimal must be true or false, got '2'");
  EXPECT_THAT(error("path:weight=3"), HasSubstr("task path: unknown option weight (known: "));
}

TEST(TaskFamiliesTest, DefaultSpecs) {
  EXPECT_EQ(Make("countdown")->spec(), "countdown:max=25,max_target=100,n=4,use_all=true");
  EXPECT_EQ(Make("addition")->spec(), "addition:digits=3,operands=2");
  EXPECT_EQ(Make("modular")->spec(), "modular:length=6,modulus=17");
  EXPECT_EQ(Make("word")->spec(), "word:max=50,ops=2");
  EXPECT_EQ(Make("path")->spec(), "path:degree=3,max_weight=9,nodes=6,optimal=true");
  EXPECT_EQ(Make("countdown:use_all=no,n=5")->spec(),
            "countdown:max=25,max_target=100,n=5,use_all=false");
}

}  // namespace
}  // namespace deepsearch
