// UTF-8 helpers for the tokenizers: validation, code point iteration, and lossy decoding.
//
// Lossy decoding follows the Unicode "substitution of maximal subparts" practice (Unicode
// 15, §3.9, U+FFFD substitution), which is what Rust's String::from_utf8_lossy and
// therefore Hugging Face tokenizers' decode do: every maximal prefix of a well-formed
// sequence that cannot be completed becomes one U+FFFD, and every other bad byte one U+FFFD.
//
// White space is Unicode's White_Space property (PropList.txt), which is what Oniguruma's
// and Rust regex's \s match with Unicode on.
//
// All functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace deepsearch {

inline constexpr char32_t kReplacementCharacter = 0xFFFD;
inline constexpr std::string_view kReplacementUtf8 = "\xEF\xBF\xBD";

// One step of decoding at `pos` (< text.size()).
struct Utf8Step {
  char32_t code_point;  // the code point, or U+FFFD when !valid
  size_t length;        // bytes consumed, >= 1
  bool valid;           // a complete, well-formed sequence
};
Utf8Step DecodeUtf8Step(std::string_view text, size_t pos);

// True when `text` is well-formed UTF-8; otherwise *error_offset (when given) is the byte
// offset of the first bad sequence.
bool IsValidUtf8(std::string_view text, size_t* error_offset = nullptr);

void AppendUtf8(char32_t code_point, std::string* out);

// Decodes bytes to valid UTF-8, each bad sequence replaced by U+FFFD as described above.
std::string Utf8Lossy(std::string_view bytes);

// The number of trailing bytes (0 to 3) that form a proper prefix of a well-formed sequence:
// bytes a later chunk may still complete. Everything before them decodes the same whatever
// follows.
size_t IncompleteUtf8Suffix(std::string_view bytes);

// Unicode White_Space: U+0009..U+000D, U+0020, U+0085, U+00A0, U+1680, U+2000..U+200A,
// U+2028, U+2029, U+202F, U+205F, U+3000.
bool IsUnicodeWhiteSpace(char32_t c);

// "U+00E9" style name of a code point, for messages.
std::string CodePointName(char32_t c);

}  // namespace deepsearch
