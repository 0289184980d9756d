#include "common/tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "absl/strings/str_cat.h"

#include "common/tokenizer/utf8.h"

namespace deepsearch {
namespace {

// Unicode White_Space as the body of a PCRE2 character class (see utf8.h).
constexpr char kWhiteSpaceClassBody[] =
    R"(\t\n\x0B\f\r\x20\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

pcre2_code* Code(void* code) { return static_cast<pcre2_code*>(code); }

std::string Pcre2ErrorMessage(int error_code) {
  PCRE2_UCHAR buffer[256];
  const int n = pcre2_get_error_message(error_code, buffer, sizeof(buffer));
  if (n < 0) return absl::StrCat("PCRE2 error ", error_code);
  return std::string(reinterpret_cast<const char*>(buffer), n);
}

}  // namespace

absl::StatusOr<std::string> RewritePatternForPcre2(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() * 2);
  bool in_class = false;
  size_t i = 0;
  while (i < pattern.size()) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char d = pattern[i + 1];
      if (d == 's') {
        if (in_class) {
          out.append(kWhiteSpaceClassBody);
        } else {
          absl::StrAppend(&out, "[", kWhiteSpaceClassBody, "]");
        }
      } else if (d == 'S') {
        if (in_class) {
          return absl::InvalidArgumentError(
              absl::StrCat("regex '", std::string(pattern),
                           "': \\S inside a character class at offset ", i, " is not supported"));
        }
        absl::StrAppend(&out, "[^", kWhiteSpaceClassBody, "]");
      } else {
        out.append(pattern.substr(i, 2));
      }
      i += 2;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out.push_back(c);
      ++i;
      // A ']' right after '[' or '[^' is a literal, not the end of the class.
      if (i < pattern.size() && pattern[i] == '^') out.push_back(pattern[i++]);
      if (i < pattern.size() && pattern[i] == ']') out.push_back(pattern[i++]);
      continue;
    }
    if (in_class && c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
      // A POSIX class such as [:alpha:] inside a class: copy it whole.
      const size_t end = pattern.find(":]", i + 2);
      if (end != std::string_view::npos) {
        out.append(pattern.substr(i, end + 2 - i));
        i = end + 2;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out.push_back(c);
    ++i;
  }
  return out;
}

absl::StatusOr<std::unique_ptr<RegexSplitter>> RegexSplitter::Create(std::string_view pattern) {
  absl::StatusOr<std::string> rewritten = RewritePatternForPcre2(pattern);
  if (!rewritten.ok()) return rewritten.status();
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten->data()), rewritten->size(),
                    PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("regex '", std::string(pattern), "' does not compile (as '", *rewritten,
                     "', at offset ", error_offset, "): ", Pcre2ErrorMessage(error_code)));
  }
  // Without JIT support pcre2_match interprets the pattern: slower, same results.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return std::unique_ptr<RegexSplitter>(new RegexSplitter(std::string(pattern), code));
}

RegexSplitter::~RegexSplitter() { pcre2_code_free(Code(code_)); }

absl::Status RegexSplitter::Split(std::string_view text,
                                  std::vector<std::string_view>* pieces) const {
  pcre2_code* code = Code(code_);
  pcre2_match_data* match_data = pcre2_match_data_create_from_pattern(code, nullptr);
  if (match_data == nullptr) return absl::ResourceExhaustedError("PCRE2: out of memory");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const size_t n = text.size();
  size_t last = 0;  // end of the text already emitted
  size_t pos = 0;   // where the next search starts
  absl::Status status;
  while (pos <= n) {
    int rc = pcre2_match(code, subject, n, pos, PCRE2_NO_UTF_CHECK, match_data, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      // The JIT's fixed stack is too small for this subject; the interpreter uses the heap.
      rc = pcre2_match(code, subject, n, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, match_data,
                       nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      status = absl::ResourceExhaustedError(
          absl::StrCat("regex '", pattern_, "' failed at byte ", pos, ": ", Pcre2ErrorMessage(rc)));
      break;
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match_data);
    const size_t start = ovector[0];
    const size_t end = ovector[1];
    if (start > last) pieces->push_back(text.substr(last, start - last));
    if (end > start) {
      pieces->push_back(text.substr(start, end - start));
      last = end;
      pos = end;
    } else {
      // An empty match: step over one code point so the search moves on.
      last = start;
      if (start >= n) break;
      pos = start + DecodeUtf8Step(text, start).length;
    }
  }
  if (status.ok() && last < n) pieces->push_back(text.substr(last));
  pcre2_match_data_free(match_data);
  return status;
}

}  // namespace deepsearch
