// The regex pre-tokenizer: splits text into the pieces BPE runs on, with PCRE2.
//
// Reimplements Hugging Face tokenizers' `Split` pre-tokenizer with behavior "Isolated"
// (every match is one piece, and so is every stretch of text between matches) and the
// regex half of its `ByteLevel(use_regex=true)` pre-tokenizer. The patterns come from the
// tokenizer.json; the two that matter are
//
//   Qwen2 / Qwen2.5 / Qwen3 / DeepSeek-R1-Distill-Qwen (a Split pre-tokenizer):
//     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|
//     ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   GPT-2 (ByteLevel with use_regex=true, hard-coded in tokenizers' byte_level.rs):
//     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// Hugging Face compiles them with Oniguruma, whose \s with Unicode is the White_Space
// property. PCRE2's \s differs (it has U+180E, the Mongolian vowel separator), so the pattern
// is rewritten before compiling: \s and \S become explicit White_Space classes
// (RewritePatternForPcre2). Everything else (\p{L}, \p{N}, the lookahead, (?i:...) with
// Unicode case folding, so 'ſ' matches 's' as in Oniguruma) is PCRE2's own, compiled with
// PCRE2_UTF | PCRE2_UCP and JIT when available.
//
// Not supported: `\S` inside a character class (refused at Create), the other Split
// behaviors (Removed, MergedWithPrevious, ...), invert, and String (literal) patterns; those
// are refused by the tokenizer.json reader. Letters assigned after the Unicode version of the
// system's PCRE2 (Debian 12: 10.42, Unicode 14) are not \p{L} here.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace deepsearch {

inline constexpr std::string_view kQwen2PreTokenizerPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kGpt2PreTokenizerPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Rewrites \s and \S to explicit Unicode White_Space classes (see above). Fails on \S inside
// a character class, which PCRE2 cannot express without nesting classes.
absl::StatusOr<std::string> RewritePatternForPcre2(std::string_view pattern);

class RegexSplitter {
 public:
  // Compiles `pattern` (a tokenizer.json regex). Errors carry PCRE2's message and offset.
  static absl::StatusOr<std::unique_ptr<RegexSplitter>> Create(std::string_view pattern);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;

  // Appends the pieces of `text` (valid UTF-8) to `pieces`, in order; they concatenate to
  // `text`. Empty matches produce no piece. Fails only when PCRE2 reports a matching error
  // (a resource limit). Thread-safe: any number of threads may split at once.
  absl::Status Split(std::string_view text, std::vector<std::string_view>* pieces) const;

  const std::string& pattern() const { return pattern_; }

 private:
  RegexSplitter(std::string pattern, void* code) : pattern_(std::move(pattern)), code_(code) {}

  std::string pattern_;  // as given
  void* code_;           // pcre2_code_8*, owned; kept out of this header
};

}  // namespace deepsearch
