#include "search/prompt_format.h"

#include "absl/strings/str_cat.h"

#include "common/core/status.h"

namespace deepsearch {

namespace {
constexpr std::string_view kPlaceholder = "{prompt}";
}  // namespace

absl::StatusOr<PromptFormat> PromptFormat::Parse(std::string_view templ) {
  const size_t at = templ.find(kPlaceholder);
  if (at == std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt template '", std::string(templ), "' has no {prompt} placeholder"));
  }
  if (templ.find(kPlaceholder, at + kPlaceholder.size()) != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt template '", std::string(templ), "' has {prompt} more than once"));
  }
  PromptFormat f;
  f.before_ = std::string(templ.substr(0, at));
  f.after_ = std::string(templ.substr(at + kPlaceholder.size()));
  return f;
}

absl::StatusOr<std::vector<int32_t>> PromptFormat::Encode(const Tokenizer& tokenizer,
                                                          std::string_view prompt,
                                                          int64_t max_tokens) const {
  std::vector<int32_t> ids;
  if (!before_.empty()) {
    absl::StatusOr<std::vector<TokenId>> part = tokenizer.Encode(before_, /*allow_special=*/true);
    if (!part.ok()) return Annotate(part.status(), "prompt template");
    ids.insert(ids.end(), part->begin(), part->end());
  }
  absl::StatusOr<std::vector<TokenId>> body = tokenizer.Encode(prompt, /*allow_special=*/false);
  if (!body.ok()) return Annotate(body.status(), "problem statement");
  ids.insert(ids.end(), body->begin(), body->end());
  if (!after_.empty()) {
    absl::StatusOr<std::vector<TokenId>> part = tokenizer.Encode(after_, /*allow_special=*/true);
    if (!part.ok()) return Annotate(part.status(), "prompt template");
    ids.insert(ids.end(), part->begin(), part->end());
  }
  if (ids.empty()) return absl::InvalidArgumentError("the prompt encodes to no tokens");
  if (max_tokens > 0 && static_cast<int64_t>(ids.size()) > max_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("the prompt is ", ids.size(), " tokens, more than the limit of ", max_tokens));
  }
  return ids;
}

std::string PromptFormat::Render(std::string_view prompt) const {
  return absl::StrCat(before_, std::string(prompt), after_);
}

std::string PromptFormat::ToString() const {
  return absl::StrCat(before_, std::string(kPlaceholder), after_);
}

}  // namespace deepsearch
