// The "word" task family ("GSM-lite"): templated word problems in English with integer
// answers, solved one arithmetic statement per line (word_problems.h has the scenarios).
//
// Spec: word:max=50,ops=2
//   ops  operations in the solution, 1..8 (default 2)
//   max  the largest number drawn, 2..1000 (default 50); counts stay at most 12 and every
//        intermediate value at most 20*max
//
// Prompt: sentences and a question, then "\n":
//   "A shop has 24 apples. It buys 3 crates of 12 apples. How many apples does the shop have
//   now?\n"
// Answer: the integer asked for ("60").
// Response: one statement "a op b=c" per line (ops + - * /, no spaces), then the answer boxed:
//   3*12=36
//   24+36=60
//   \boxed{60}
//
// The verifier checks every statement line: it is of that form, arithmetically true and stays
// in the non-negative integers (exact division), and its operands are numbers written in the
// prompt or results of earlier statements. At least one statement is needed, the final answer
// is graded by the math grader (GradeMathResponse, strict: DeepSearch's reward), and the last
// statement's result must be that answer. Verify works on any prompt; Solve needs one written
// by the generator.
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

#include "common/tasks/families.h"
#include "common/tasks/math_grader.h"
#include "common/tasks/response_format.h"
#include "common/tasks/word_problems.h"

namespace deepsearch {
namespace {

constexpr int kMaxOps = 8;

// Every number written in `text` (maximal digit runs that parse as numbers).
absl::flat_hash_set<int64_t> NumbersIn(std::string_view text) {
  absl::flat_hash_set<int64_t> numbers;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] < '0' || text[i] > '9') {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
    if (const std::optional<int64_t> x = ParseNumber(text.substr(i, end - i))) numbers.insert(*x);
    i = end;
  }
  return numbers;
}

class WordTask final : public TaskFamily {
 public:
  WordTask(int ops, int64_t max) : ops_(ops), max_(max) {}

  std::string name() const override { return "word"; }
  std::string spec() const override { return absl::StrCat("word:max=", max_, ",ops=", ops_); }

  Problem Generate(Rng& rng) const override {
    const int scenario = static_cast<int>(rng.UniformInt(0, WordScenarioCount() - 1));
    const WordProblem w = GenerateWordProblem(scenario, ops_, max_, rng);
    Problem p;
    p.prompt = w.prompt;
    p.answer = absl::StrCat(w.answer);
    p.task = spec();
    p.id = StableProblemId(p.prompt, p.answer);
    return p;
  }

  std::optional<std::string> Solve(const Problem& problem) const override {
    const std::optional<WordProblem> w = SolveWordPrompt(problem.prompt);
    if (!w || absl::StrCat(w->answer) != problem.answer) return std::nullopt;
    std::vector<std::string> lines;
    for (const ArithmeticStep& step : w->steps) lines.push_back(FormatArithmeticStep(step));
    return RenderStepResponse(lines, problem.answer);
  }

  Verdict Verify(const Problem& problem, std::string_view response) const override {
    const absl::StatusOr<StepResponse> parsed = ParseStepResponse(response);
    if (!parsed.ok()) {
      return RejectResponse(problem, response, std::string(parsed.status().message()));
    }
    auto fail = [&](std::string reason) {
      return Verdict::Incorrect(std::string(parsed->answer), problem.answer, std::move(reason));
    };
    if (parsed->steps.empty()) return fail("no steps");
    absl::flat_hash_set<int64_t> known = NumbersIn(problem.prompt);
    int64_t last = 0;
    for (size_t i = 0; i < parsed->steps.size(); ++i) {
      const std::string where = absl::StrCat("step ", i + 1, ": ");
      const std::string_view text = parsed->steps[i];
      const std::optional<ArithmeticStep> step = ParseArithmeticStep(text);
      if (!step) {
        return fail(absl::StrCat(where, "malformed '", std::string(text),
                                 "' (expected a+b=c with one of + - * /)"));
      }
      for (const int64_t operand : {step->a, step->b}) {
        if (!known.contains(operand)) {
          return fail(
              absl::StrCat(where, operand, " is neither in the problem nor an earlier result"));
        }
      }
      const std::optional<int64_t> result = ApplyArithmeticOp(step->a, step->op, step->b);
      if (!result) return fail(where + DisallowedReason(step->a, step->op, step->b));
      if (*result != step->result) {
        return fail(absl::StrCat(where, FormatOperation(step->a, step->op, step->b), " is ",
                                 *result, ", not ", step->result));
      }
      known.insert(*result);
      last = *result;
    }
    Verdict graded = GradeMathResponse(response, problem.answer, GradeMode::kStrict);
    if (!graded.correct) return graded;
    if (absl::StrCat(last) != graded.predicted) {
      return Verdict::Incorrect(
          graded.predicted, graded.expected,
          absl::StrCat("the last step gives ", last, ", not the answer ", graded.predicted));
    }
    return graded;
  }

 private:
  const int ops_;
  const int64_t max_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<TaskFamily>> MakeWordTask(TaskOptions& options) {
  const absl::StatusOr<int64_t> ops = options.Int("ops", 2, 1, kMaxOps);
  if (!ops.ok()) return ops.status();
  const absl::StatusOr<int64_t> max = options.Int("max", 50, 2, 1000);
  if (!max.ok()) return max.status();
  return std::unique_ptr<TaskFamily>(new WordTask(static_cast<int>(*ops), *max));
}

}  // namespace deepsearch
