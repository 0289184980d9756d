// The response format shared by the generated task families (task.h), parsed once here so
// every verifier is strict in the same way:
//
//   step 1\n
//   step 2\n
//   ...
//   \boxed{answer}
//
// followed by nothing but optional spaces and newlines. Every character is printable ASCII
// (0x20..0x7E) or "\n", the alphabet of the built-in task tokenizer. Every step is one
// non-empty line; the answer is the whole last line, "\boxed{...}" with balanced braces.
// Numbers inside steps are written in decimal without sign or leading zeros.
//
// Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

#include "common/tasks/problem.h"

namespace deepsearch {

// The largest number a step may write: 18 digits, so sums and products of two of them are
// checked for overflow in int64_t without a wider type.
inline constexpr int kMaxNumberDigits = 18;

struct StepResponse {
  std::vector<std::string_view> steps;  // each without its "\n", in order; views into the text
  std::string_view answer;              // the text inside the final \boxed{}
};

// Splits `response` into steps and the boxed answer; the error message is the reason to
// report ("no \boxed{} answer on the last line", "step 3 is empty", "character 0x09 at
// offset 12 is not printable ASCII").
absl::StatusOr<StepResponse> ParseStepResponse(std::string_view response);

// The text inside the last "\boxed{...}" of `response` when one is there (for Verdict's
// `predicted` on malformed responses), else "".
std::string BoxedTextOrEmpty(std::string_view response);

// Renders steps and an answer in the format above (no trailing newline after the box).
std::string RenderStepResponse(const std::vector<std::string>& steps, std::string_view answer);

// A non-negative decimal integer of at most kMaxNumberDigits digits, without a sign or a
// leading zero ("0" itself is fine); nullopt otherwise.
std::optional<int64_t> ParseNumber(std::string_view text);

// Reads a number (as ParseNumber) at the front of `text` and advances past it; nullopt, with
// `text` unchanged, when no valid number starts there.
std::optional<int64_t> ConsumeNumber(std::string_view& text);

// Removes `prefix` from the front of `text` when it is there.
bool ConsumePrefix(std::string_view& text, std::string_view prefix);

// Checked int64 arithmetic for verifiers: nullopt on overflow.
std::optional<int64_t> CheckedAdd(int64_t a, int64_t b);
std::optional<int64_t> CheckedMul(int64_t a, int64_t b);

// A failed verdict for `problem` with `reason`; `predicted` is the boxed text when any.
Verdict RejectResponse(const Problem& problem, std::string_view response, std::string reason);

}  // namespace deepsearch
