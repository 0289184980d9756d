// Prompt templates: the text around a problem statement as the policy sees it.
//
//   PromptFormat f = *PromptFormat::Parse("<bos>{prompt}\n");
//   std::vector<int32_t> ids = *f.Encode(tokenizer, problem.prompt);
//
// The template holds "{prompt}" exactly once. Its own text may name special tokens
// ("<bos>", "<｜Assistant｜>"), which are recognised; the problem statement is encoded with
// special tokens off, so a problem cannot inject a special token. The parts are encoded
// separately and concatenated, as chat templates do.
//
// The built-in task models use "<bos>{prompt}\n"; DeepSeek-R1-Distill checkpoints, as
// DeepSearch trained them: "<｜begin▁of▁sentence｜><｜User｜>{prompt} Let's think step by step
// and output the final answer within \boxed{}.<｜Assistant｜><think>\n".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

#include "common/tokenizer/tokenizer.h"

namespace deepsearch {

class PromptFormat {
 public:
  static constexpr std::string_view kTaskDefault = "<bos>{prompt}\n";

  // Errors say what is wrong with the template (no "{prompt}", or more than one).
  static absl::StatusOr<PromptFormat> Parse(std::string_view templ);

  // The prompt's token ids. Fails when the statement is not valid UTF-8, cannot be encoded,
  // or the result is longer than max_tokens (when > 0), naming the lengths.
  absl::StatusOr<std::vector<int32_t>> Encode(const Tokenizer& tokenizer, std::string_view prompt,
                                              int64_t max_tokens = 0) const;
  // The template with the statement in place.
  std::string Render(std::string_view prompt) const;
  std::string ToString() const;

 private:
  std::string before_;
  std::string after_;
};

}  // namespace deepsearch
