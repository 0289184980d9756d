#include "common/tasks/response_format.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace deepsearch {
namespace {

constexpr std::string_view kBoxOpen = "\\boxed{";

bool IsAlphabet(char c) { return c == '\n' || (c >= 0x20 && c <= 0x7e); }

}  // namespace

absl::StatusOr<StepResponse> ParseStepResponse(std::string_view response) {
  for (size_t i = 0; i < response.size(); ++i) {
    if (!IsAlphabet(response[i])) {
      return absl::InvalidArgumentError(
          absl::StrFormat("character 0x%02x at offset %d is not printable ASCII",
                          static_cast<unsigned char>(response[i]), i));
    }
  }
  std::string_view text = response;
  while (!text.empty() && (text.back() == ' ' || text.back() == '\n')) text.remove_suffix(1);
  const size_t last_newline = text.rfind('\n');
  const std::string_view last_line =
      last_newline == std::string_view::npos ? text : text.substr(last_newline + 1);
  if (last_line.substr(0, kBoxOpen.size()) != kBoxOpen) {
    return absl::InvalidArgumentError("no \\boxed{} answer on the last line");
  }
  // The brace opened by \boxed{ must close at the very end of the line.
  int depth = 0;
  size_t close = std::string_view::npos;
  for (size_t i = kBoxOpen.size() - 1; i < last_line.size(); ++i) {
    if (last_line[i] == '{') ++depth;
    if (last_line[i] == '}' && --depth == 0) {
      close = i;
      break;
    }
  }
  if (close == std::string_view::npos) {
    return absl::InvalidArgumentError("the \\boxed{ on the last line is not closed");
  }
  if (close + 1 != last_line.size()) {
    return absl::InvalidArgumentError("text after the \\boxed{} answer");
  }
  StepResponse out;
  out.answer = last_line.substr(kBoxOpen.size(), close - kBoxOpen.size());
  if (out.answer.empty()) return absl::InvalidArgumentError("the \\boxed{} answer is empty");
  if (last_newline == std::string_view::npos) return out;
  std::string_view steps = text.substr(0, last_newline + 1);
  while (!steps.empty()) {
    const size_t end = steps.find('\n');
    const std::string_view step = steps.substr(0, end);
    if (step.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("step ", out.steps.size() + 1, " is empty"));
    }
    out.steps.push_back(step);
    steps.remove_prefix(end + 1);
  }
  return out;
}

std::string BoxedTextOrEmpty(std::string_view response) {
  const size_t open = response.rfind(kBoxOpen);
  if (open == std::string_view::npos) return "";
  int depth = 0;
  for (size_t i = open + kBoxOpen.size() - 1; i < response.size(); ++i) {
    if (response[i] == '{') ++depth;
    if (response[i] == '}' && --depth == 0) {
      const size_t begin = open + kBoxOpen.size();
      return std::string(response.substr(begin, i - begin));
    }
  }
  return "";
}

std::string RenderStepResponse(const std::vector<std::string>& steps, std::string_view answer) {
  std::string out;
  for (const std::string& step : steps) absl::StrAppend(&out, step, "\n");
  absl::StrAppend(&out, absl::string_view(kBoxOpen.data(), kBoxOpen.size()),
                  absl::string_view(answer.data(), answer.size()), "}");
  return out;
}

std::optional<int64_t> ParseNumber(std::string_view text) {
  std::string_view rest = text;
  const std::optional<int64_t> value = ConsumeNumber(rest);
  if (!value || !rest.empty()) return std::nullopt;
  return value;
}

std::optional<int64_t> ConsumeNumber(std::string_view& text) {
  size_t n = 0;
  while (n < text.size() && text[n] >= '0' && text[n] <= '9') ++n;
  if (n == 0 || n > static_cast<size_t>(kMaxNumberDigits)) return std::nullopt;
  if (n > 1 && text[0] == '0') return std::nullopt;
  int64_t value = 0;
  for (size_t i = 0; i < n; ++i) value = value * 10 + (text[i] - '0');
  text.remove_prefix(n);
  return value;
}

bool ConsumePrefix(std::string_view& text, std::string_view prefix) {
  if (text.substr(0, prefix.size()) != prefix) return false;
  text.remove_prefix(prefix.size());
  return true;
}

std::optional<int64_t> CheckedAdd(int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out)) return std::nullopt;
  return out;
}

std::optional<int64_t> CheckedMul(int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out)) return std::nullopt;
  return out;
}

Verdict RejectResponse(const Problem& problem, std::string_view response, std::string reason) {
  return Verdict::Incorrect(BoxedTextOrEmpty(response), problem.answer, std::move(reason));
}

}  // namespace deepsearch
