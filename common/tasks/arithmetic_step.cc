#include "common/tasks/arithmetic_step.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

#include "common/tasks/response_format.h"

namespace deepsearch {

std::optional<int64_t> ApplyArithmeticOp(int64_t a, char op, int64_t b) {
  if (a < 0 || b < 0) return std::nullopt;
  switch (op) {
    case '+':
      return CheckedAdd(a, b);
    case '-':
      if (a < b) return std::nullopt;
      return a - b;
    case '*':
      return CheckedMul(a, b);
    case '/':
      if (b == 0 || a % b != 0) return std::nullopt;
      return a / b;
    default:
      return std::nullopt;
  }
}

std::string DisallowedReason(int64_t a, char op, int64_t b) {
  const std::string operation = FormatOperation(a, op, b);
  if (op == '-' && a < b) return absl::StrCat(operation, " is negative");
  if (op == '/' && b == 0) return absl::StrCat(operation, " divides by zero");
  if (op == '/' && a % b != 0) return absl::StrCat(operation, " is not an integer");
  return absl::StrCat(operation, " overflows");
}

std::optional<ArithmeticStep> ParseArithmeticStep(std::string_view text) {
  ArithmeticStep step;
  const std::optional<int64_t> a = ConsumeNumber(text);
  if (!a || text.empty()) return std::nullopt;
  step.op = text[0];
  if (std::find(std::begin(kArithmeticOps), std::end(kArithmeticOps), step.op) ==
      std::end(kArithmeticOps)) {
    return std::nullopt;
  }
  text.remove_prefix(1);
  const std::optional<int64_t> b = ConsumeNumber(text);
  if (!b || !ConsumePrefix(text, "=")) return std::nullopt;
  const std::optional<int64_t> c = ParseNumber(text);
  if (!c) return std::nullopt;
  step.a = *a;
  step.b = *b;
  step.result = *c;
  return step;
}

std::string FormatArithmeticStep(const ArithmeticStep& step) {
  return absl::StrCat(FormatOperation(step.a, step.op, step.b), "=", step.result);
}

std::string FormatOperation(int64_t a, char op, int64_t b) {
  return absl::StrCat(a, std::string(1, op), b);
}

}  // namespace deepsearch
