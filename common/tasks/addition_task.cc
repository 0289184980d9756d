// The "addition" task family (the smoke task): multi-digit addition done column by column,
// the sum written least significant digit first.
//
// Spec: addition:digits=3,operands=2
//   digits    digits of each operand, 1..12 (default 3); an operand is uniform over the
//             numbers with exactly that many digits (0..9 for one digit)
//   operands  how many numbers are added, 2..4 (default 2)
//
// Prompt: "Add 357+628, digits reversed.\n". Answer: the sum's digits reversed ("589" for
// 985; a trailing zero stays: 120 gives "021").
// Response: one step per digit of the sum, least significant first: the column's digits in
// operand order (0 past an operand's end), plus the carry coming in, their sum, the digit
// written and the carry going out; then the written digits, boxed:
//   7+8+0=15 write 5 carry 1
//   5+2+1=8 write 8 carry 0
//   3+6+0=9 write 9 carry 0
//   \boxed{589}
// There are as many steps as the wider of the longest operand and the sum, so the last step
// carries out 0.
//
// The verifier reads the operands from the prompt (2 to 4 operands of 1 to 12 digits) and
// checks every step: its terms are the column's digits and the incoming carry, the sum is
// right, and the written digit and outgoing carry are the sum's last digit and the rest. The
// number of steps must be exact and the boxed answer must be the digits written, which is the
// reversed sum.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "common/tasks/families.h"
#include "common/tasks/response_format.h"

namespace deepsearch {
namespace {

constexpr int kMaxDigits = 12;
constexpr int kMaxOperands = 4;

// One column step as written: terms (column digits, then the incoming carry), sum, digit
// written, carry out.
struct ColumnStep {
  std::vector<int64_t> terms;
  int64_t sum = 0;
  int64_t write = 0;
  int64_t carry = 0;
};

std::optional<ColumnStep> ParseColumnStep(std::string_view text) {
  ColumnStep step;
  while (true) {
    const std::optional<int64_t> term = ConsumeNumber(text);
    if (!term) return std::nullopt;
    step.terms.push_back(*term);
    if (ConsumePrefix(text, "=")) break;
    if (!ConsumePrefix(text, "+") || step.terms.size() > kMaxOperands + 1) return std::nullopt;
  }
  const std::optional<int64_t> sum = ConsumeNumber(text);
  if (!sum || !ConsumePrefix(text, " write ")) return std::nullopt;
  const std::optional<int64_t> write = ConsumeNumber(text);
  if (!write || !ConsumePrefix(text, " carry ")) return std::nullopt;
  const std::optional<int64_t> carry = ParseNumber(text);
  if (!carry) return std::nullopt;
  step.sum = *sum;
  step.write = *write;
  step.carry = *carry;
  return step;
}

// The digit of `operand` (decimal text) in column `column` (0: units), 0 past its end.
int64_t Digit(const std::string& operand, size_t column) {
  if (column >= operand.size()) return 0;
  return operand[operand.size() - 1 - column] - '0';
}

// The worked column steps for `operands` (decimal texts).
std::vector<ColumnStep> Columns(const std::vector<std::string>& operands) {
  size_t width = 0;
  for (const std::string& x : operands) width = std::max(width, x.size());
  std::vector<ColumnStep> steps;
  int64_t carry = 0;
  for (size_t column = 0; column < width || carry > 0; ++column) {
    ColumnStep step;
    for (const std::string& x : operands) step.terms.push_back(Digit(x, column));
    step.terms.push_back(carry);
    for (int64_t t : step.terms) step.sum += t;
    step.write = step.sum % 10;
    step.carry = step.sum / 10;
    carry = step.carry;
    steps.push_back(std::move(step));
  }
  return steps;
}

std::string FormatColumnStep(const ColumnStep& step) {
  return absl::StrCat(absl::StrJoin(step.terms, "+"), "=", step.sum, " write ", step.write,
                      " carry ", step.carry);
}

std::string ReversedSum(const std::vector<ColumnStep>& steps) {
  std::string out;
  for (const ColumnStep& step : steps) out += static_cast<char>('0' + step.write);
  return out;
}

class AdditionTask final : public TaskFamily {
 public:
  AdditionTask(int digits, int operands) : digits_(digits), operands_(operands) {}

  std::string name() const override { return "addition"; }
  std::string spec() const override {
    return absl::StrCat("addition:digits=", digits_, ",operands=", operands_);
  }

  Problem Generate(Rng& rng) const override {
    std::vector<std::string> operands;
    for (int i = 0; i < operands_; ++i) {
      std::string x;
      for (int d = 0; d < digits_; ++d) {
        const bool leading = d == 0 && digits_ > 1;
        x += static_cast<char>('0' + rng.UniformInt(leading ? 1 : 0, 9));
      }
      operands.push_back(std::move(x));
    }
    Problem p;
    p.prompt = absl::StrCat("Add ", absl::StrJoin(operands, "+"), ", digits reversed.\n");
    p.answer = ReversedSum(Columns(operands));
    p.task = spec();
    p.id = StableProblemId(p.prompt, p.answer);
    return p;
  }

  std::optional<std::string> Solve(const Problem& problem) const override {
    const absl::StatusOr<std::vector<std::string>> operands = ParseProblem(problem);
    if (!operands.ok()) return std::nullopt;
    const std::vector<ColumnStep> steps = Columns(*operands);
    std::vector<std::string> lines;
    lines.reserve(steps.size());
    for (const ColumnStep& step : steps) lines.push_back(FormatColumnStep(step));
    return RenderStepResponse(lines, ReversedSum(steps));
  }

  Verdict Verify(const Problem& problem, std::string_view response) const override {
    const absl::StatusOr<std::vector<std::string>> operands = ParseProblem(problem);
    if (!operands.ok()) {
      return RejectResponse(problem, response, std::string(operands.status().message()));
    }
    const absl::StatusOr<StepResponse> parsed = ParseStepResponse(response);
    if (!parsed.ok()) {
      return RejectResponse(problem, response, std::string(parsed.status().message()));
    }
    const std::string predicted(parsed->answer);
    auto fail = [&](std::string reason) {
      return Verdict::Incorrect(predicted, problem.answer, std::move(reason));
    };
    const std::vector<ColumnStep> expected = Columns(*operands);
    std::string written;
    for (size_t i = 0; i < parsed->steps.size(); ++i) {
      const std::string where = absl::StrCat("step ", i + 1, ": ");
      const std::string_view text = parsed->steps[i];
      if (i >= expected.size()) {
        return fail(absl::StrCat(where, "extra step (the sum has ", expected.size(), " digits)"));
      }
      const std::optional<ColumnStep> step = ParseColumnStep(text);
      if (!step) {
        return fail(absl::StrCat(where, "malformed '", std::string(text),
                                 "' (expected digits+carry=sum write d carry c)"));
      }
      const ColumnStep& want = expected[i];
      if (step->terms != want.terms) {
        std::vector<int64_t> digits(want.terms.begin(), want.terms.end() - 1);
        return fail(absl::StrCat(where, "the column is ", absl::StrJoin(digits, "+"),
                                 " with carry ", want.terms.back(), ", not ",
                                 absl::StrJoin(step->terms, "+")));
      }
      if (step->sum != want.sum) {
        return fail(absl::StrCat(where, absl::StrJoin(want.terms, "+"), " is ", want.sum, ", not ",
                                 step->sum));
      }
      if (step->write != want.write || step->carry != want.carry) {
        return fail(absl::StrCat(where, want.sum, " writes ", want.write, " and carries ",
                                 want.carry, ", not ", step->write, " and ", step->carry));
      }
      written += static_cast<char>('0' + step->write);
    }
    if (parsed->steps.size() < expected.size()) {
      return fail(absl::StrCat("only ", parsed->steps.size(), " steps; the sum has ",
                               expected.size(), " digits"));
    }
    if (predicted != written) {
      return fail(absl::StrCat("boxed answer ", predicted, ", but the steps wrote ", written));
    }
    return Verdict::Correct(predicted, problem.answer);
  }

 private:
  // The operands of "Add 357+628, digits reversed.\n", checked against the answer.
  absl::StatusOr<std::vector<std::string>> ParseProblem(const Problem& problem) const {
    auto malformed = [] {
      return absl::InvalidArgumentError(
          "problem: the prompt is not of the form 'Add 357+628, digits reversed.\\n'");
    };
    std::string_view text = problem.prompt;
    if (!ConsumePrefix(text, "Add ")) return malformed();
    std::vector<std::string> operands;
    while (true) {
      const std::string_view before = text;
      if (!ConsumeNumber(text)) return malformed();
      const size_t length = before.size() - text.size();
      if (length > static_cast<size_t>(kMaxDigits)) return malformed();
      operands.emplace_back(before.substr(0, length));
      if (ConsumePrefix(text, ", digits reversed.\n")) break;
      if (!ConsumePrefix(text, "+")) return malformed();
    }
    if (!text.empty()) return malformed();
    if (operands.size() < 2 || operands.size() > kMaxOperands) {
      return absl::InvalidArgumentError(absl::StrCat(
          "problem: ", operands.size(), " operands (2 to ", kMaxOperands, " are supported)"));
    }
    const std::string sum = ReversedSum(Columns(operands));
    if (problem.answer != sum) {
      return absl::InvalidArgumentError(
          absl::StrCat("problem: the answer '", problem.answer, "' is not the reversed sum ", sum));
    }
    return operands;
  }

  const int digits_;
  const int operands_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<TaskFamily>> MakeAdditionTask(TaskOptions& options) {
  const absl::StatusOr<int64_t> digits = options.Int("digits", 3, 1, kMaxDigits);
  if (!digits.ok()) return digits.status();
  const absl::StatusOr<int64_t> operands = options.Int("operands", 2, 2, kMaxOperands);
  if (!operands.ok()) return operands.status();
  return std::unique_ptr<TaskFamily>(
      new AdditionTask(static_cast<int>(*digits), static_cast<int>(*operands)));
}

}  // namespace deepsearch
