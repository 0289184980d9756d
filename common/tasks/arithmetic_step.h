// One binary arithmetic step on non-negative integers, "a+b=c", as the countdown and word
// families write them (ops + - * /, no spaces, numbers as in response_format.h).
//
// A step is allowed when it stays in the non-negative integers: a-b needs a >= b, a/b needs
// b != 0 dividing a, and nothing may overflow int64.
//
// Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace deepsearch {

inline constexpr char kArithmeticOps[] = {'+', '-', '*', '/'};

struct ArithmeticStep {
  int64_t a = 0;
  char op = '+';
  int64_t b = 0;
  int64_t result = 0;

  friend bool operator==(const ArithmeticStep&, const ArithmeticStep&) = default;
};

// a op b under the rules above; nullopt when the step is not allowed (negative, inexact or
// by-zero division, overflow, unknown op).
std::optional<int64_t> ApplyArithmeticOp(int64_t a, char op, int64_t b);

// Why ApplyArithmeticOp refused a op b: "3-8 is negative", "8/3 is not an integer", "8/0
// divides by zero", "... overflows".
std::string DisallowedReason(int64_t a, char op, int64_t b);

// Parses "a+b=c" exactly; nullopt when the text is not of that form.
std::optional<ArithmeticStep> ParseArithmeticStep(std::string_view text);

// "a+b=c".
std::string FormatArithmeticStep(const ArithmeticStep& step);
// "a+b".
std::string FormatOperation(int64_t a, char op, int64_t b);

}  // namespace deepsearch
