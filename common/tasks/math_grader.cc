#include "common/tasks/math_grader.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <algorithm>
#include <array>
#include <iterator>
#include <memory>
#include <utility>
#include <vector>

#include <pcre2.h>
#include <utf8proc.h>

#include "absl/strings/str_cat.h"

#include "common/core/logging.h"
#include "common/tasks/math_equivalence.h"

namespace deepsearch {
namespace {

// ---- Python string semantics on UTF-8 ------------------------------------------------------

// Decodes one code point at `i` (invalid bytes count as one code point each, as a lossy
// decode would produce U+FFFD for them). Returns the code point and advances `i`.
char32_t NextCodePoint(std::string_view s, size_t& i) {
  if (static_cast<unsigned char>(s[i]) < 0x80) return static_cast<char32_t>(s[i++]);
  utf8proc_int32_t cp = 0;
  const utf8proc_ssize_t n =
      utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                       static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
  if (n <= 0) {
    ++i;
    return 0xFFFD;
  }
  i += static_cast<size_t>(n);
  return static_cast<char32_t>(cp);
}

// The last `n` code points of `s` (Python's s[-n:]): one pass to count, one to skip.
std::string_view LastCodePoints(std::string_view s, size_t n) {
  if (s.size() <= n) return s;  // no more code points than bytes
  size_t count = 0;
  for (size_t i = 0; i < s.size(); ++count) NextCodePoint(s, i);
  if (count <= n) return s;
  size_t i = 0;
  for (size_t skip = count - n; skip > 0; --skip) NextCodePoint(s, i);
  return s.substr(i);
}

// Python's str.isdigit: the code points with Numeric_Type Decimal or Digit (decimal digits of
// every script, superscripts, circled digits, ...), as Python 3.11 has them (Unicode 14.0):
// the ranges of [c for c in range(0x110000) if chr(c).isdigit()]. A fixed table rather than
// utf8proc's categories, whose Unicode version moves with the library (Unicode 15 added the
// Kawi and Nag Mundari digits, which Python 3.11 does not count).
bool IsPythonDigit(char32_t c) {
  static constexpr std::array<std::pair<char32_t, char32_t>, 81> kDigitRanges = {{
      {0x30, 0x39},       {0xb2, 0xb3},       {0xb9, 0xb9},       {0x660, 0x669},
      {0x6f0, 0x6f9},     {0x7c0, 0x7c9},     {0x966, 0x96f},     {0x9e6, 0x9ef},
      {0xa66, 0xa6f},     {0xae6, 0xaef},     {0xb66, 0xb6f},     {0xbe6, 0xbef},
      {0xc66, 0xc6f},     {0xce6, 0xcef},     {0xd66, 0xd6f},     {0xde6, 0xdef},
      {0xe50, 0xe59},     {0xed0, 0xed9},     {0xf20, 0xf29},     {0x1040, 0x1049},
      {0x1090, 0x1099},   {0x1369, 0x1371},   {0x17e0, 0x17e9},   {0x1810, 0x1819},
      {0x1946, 0x194f},   {0x19d0, 0x19da},   {0x1a80, 0x1a89},   {0x1a90, 0x1a99},
      {0x1b50, 0x1b59},   {0x1bb0, 0x1bb9},   {0x1c40, 0x1c49},   {0x1c50, 0x1c59},
      {0x2070, 0x2070},   {0x2074, 0x2079},   {0x2080, 0x2089},   {0x2460, 0x2468},
      {0x2474, 0x247c},   {0x2488, 0x2490},   {0x24ea, 0x24ea},   {0x24f5, 0x24fd},
      {0x24ff, 0x24ff},   {0x2776, 0x277e},   {0x2780, 0x2788},   {0x278a, 0x2792},
      {0xa620, 0xa629},   {0xa8d0, 0xa8d9},   {0xa900, 0xa909},   {0xa9d0, 0xa9d9},
      {0xa9f0, 0xa9f9},   {0xaa50, 0xaa59},   {0xabf0, 0xabf9},   {0xff10, 0xff19},
      {0x104a0, 0x104a9}, {0x10a40, 0x10a43}, {0x10d30, 0x10d39}, {0x10e60, 0x10e68},
      {0x11052, 0x1105a}, {0x11066, 0x1106f}, {0x110f0, 0x110f9}, {0x11136, 0x1113f},
      {0x111d0, 0x111d9}, {0x112f0, 0x112f9}, {0x11450, 0x11459}, {0x114d0, 0x114d9},
      {0x11650, 0x11659}, {0x116c0, 0x116c9}, {0x11730, 0x11739}, {0x118e0, 0x118e9},
      {0x11950, 0x11959}, {0x11c50, 0x11c59}, {0x11d50, 0x11d59}, {0x11da0, 0x11da9},
      {0x16a60, 0x16a69}, {0x16ac0, 0x16ac9}, {0x16b50, 0x16b59}, {0x1d7ce, 0x1d7ff},
      {0x1e140, 0x1e149}, {0x1e2f0, 0x1e2f9}, {0x1e950, 0x1e959}, {0x1f100, 0x1f10a},
      {0x1fbf0, 0x1fbf9},
  }};
  if (c < 0x80) return c >= '0' && c <= '9';
  const auto it = std::upper_bound(kDigitRanges.begin(), kDigitRanges.end(), c,
                                   [](char32_t value, const std::pair<char32_t, char32_t>& range) {
                                     return value < range.first;
                                   });
  return it != kDigitRanges.begin() && c <= std::prev(it)->second;
}

// Python's str.isspace (the characters str.strip() removes): Python 3.11's table.
bool IsPythonSpace(char32_t c) {
  return (c >= 0x9 && c <= 0xd) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
         c == 0x205f || c == 0x3000;
}

// Python's s.replace(",", "").isdigit(): at least one digit, and nothing but digits and commas.
bool IsDigitStringWithoutCommas(std::string_view s) {
  bool any_digit = false;
  for (size_t i = 0; i < s.size();) {
    const char32_t c = NextCodePoint(s, i);
    if (c == ',') continue;
    if (!IsPythonDigit(c)) return false;
    any_digit = true;
  }
  return any_digit;
}

std::string PythonStrip(std::string_view s) {
  size_t begin = 0, end = s.size();
  while (begin < end) {
    size_t next = begin;
    if (!IsPythonSpace(NextCodePoint(s, next))) break;
    begin = next;
  }
  while (end > begin) {
    // Step back to the start of the last code point.
    size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t probe = start;
    if (!IsPythonSpace(NextCodePoint(s, probe))) break;
    end = start;
  }
  return std::string(s.substr(begin, end - begin));
}

void ReplaceAll(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty() || s.find(from) == std::string::npos) return;
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out.append(to);
  }
  out.append(s, pos, std::string::npos);
  s = std::move(out);
}

// ---- re.sub with PCRE2 ---------------------------------------------------------------------

// One of normalize_final_answer's regular expressions, compiled once (UTF mode; '.' does not
// match a newline, as in Python). The replacement uses PCRE2's syntax ($$ for a literal $).
// `needle` is a literal every match contains: a subject without it is returned unchanged
// without running the matcher (most answers contain none of the seven).
class Substitution {
 public:
  Substitution(const char* pattern, const char* replacement, const char* needle)
      : replacement_(replacement), needle_(needle) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_NO_UTF_CHECK, &error, &offset, nullptr);
    DS_CHECK(code_ != nullptr) << "pattern " << pattern << " does not compile (error " << error
                               << ")";
  }
  ~Substitution() { pcre2_code_free(code_); }
  Substitution(const Substitution&) = delete;
  Substitution& operator=(const Substitution&) = delete;

  // Every non-overlapping match, left to right (Python's re.sub).
  std::string Apply(std::string subject) const {
    if (subject.find(needle_) == std::string::npos) return subject;
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(
        pcre2_match_data_create_from_pattern(code_, nullptr), &pcre2_match_data_free);
    PCRE2_SIZE size = subject.size() * 2 + 64;
    std::string out;
    for (;;) {
      out.resize(size);
      PCRE2_SIZE produced = size;
      const int rc = pcre2_substitute(
          code_, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0,
          PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH | PCRE2_NO_UTF_CHECK,
          match.get(), nullptr, reinterpret_cast<PCRE2_SPTR>(replacement_), PCRE2_ZERO_TERMINATED,
          reinterpret_cast<PCRE2_UCHAR*>(out.data()), &produced);
      if (rc == PCRE2_ERROR_NOMEMORY) {
        size = produced;  // the length needed
        continue;
      }
      if (rc < 0) return subject;  // invalid UTF-8 in the subject: leave it untouched
      out.resize(produced);
      return out;
    }
  }

 private:
  pcre2_code* code_ = nullptr;
  const char* replacement_;
  const char* needle_;
};

// The subject strings reach PCRE2 as valid UTF-8 only: invalid bytes become U+FFFD first
// (Python strings hold code points, so the reference never sees invalid UTF-8 either).
std::string ValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t start = i;
    const char32_t cp = NextCodePoint(s, i);
    if (cp == 0xFFFD && !(i - start == 3 && s.substr(start, 3) == "\xEF\xBF\xBD")) {
      out += "\xEF\xBF\xBD";
    } else {
      out.append(s, start, i - start);
    }
  }
  return out;
}

}  // namespace

std::optional<std::string> LastBoxedOnly(std::string_view text) {
  const size_t start = text.rfind("\\boxed{");
  if (start == std::string_view::npos) return std::nullopt;
  int open = 0;
  for (size_t i = start; i < text.size(); ++i) {
    if (text[i] == '{') ++open;
    if (text[i] == '}') {
      --open;
      if (open == 0) return std::string(text.substr(start, i - start + 1));
    }
  }
  return std::nullopt;
}

std::string NormalizeFinalAnswer(std::string_view answer) {
  // The text after the last '='.
  const size_t eq = answer.rfind('=');
  std::string s = ValidUtf8(eq == std::string_view::npos ? answer : answer.substr(eq + 1));

  static constexpr std::pair<std::string_view, std::string_view> kSubstitutions[] = {
      {"an ", ""},          {"a ", ""},
      {".$", "$"},          {"\\$", ""},
      {"\\ ", ""},          {" ", ""},
      {"mbox", "text"},     {",\\text{and}", ","},
      {"\\text{and}", ","}, {"\\text{m}", "\\text{}"},
  };
  static constexpr std::string_view kRemoved[] = {
      "square",     "ways",       "integers",  "dollars",      "mph",
      "inches",     "hours",      "km",        "units",        "\\ldots",
      "sue",        "points",     "feet",      "minutes",      "digits",
      "cents",      "degrees",    "cm",        "gm",           "pounds",
      "meters",     "meals",      "edges",     "students",     "childrentickets",
      "multiples",  "\\text{s}",  "\\text{.}", "\\text{\ns}",  "\\text{}^2",
      "\\text{}^3", "\\text{\n}", "\\text{}",  "\\mathrm{th}", "^\\circ",
      "^{\\circ}",  "\\;",        ",\\!",      "{,}",          "\"",
      "\\dots",
  };
  for (const auto& [before, after] : kSubstitutions) ReplaceAll(s, before, after);
  for (std::string_view expr : kRemoved) ReplaceAll(s, expr, "");

  // The reference's regular expressions, in order; replacement groups in PCRE2 syntax.
  static const Substitution* const kRegexes[] = {
      new Substitution(R"((.*?)(\$)(.*?)(\$)(.*))", "$$${3}$$", "$"),
      new Substitution(R"((\\text\{)(.*?)(\}))", "${2}", "\\text{"),
      new Substitution(R"((\\textbf\{)(.*?)(\}))", "${2}", "\\textbf{"),
      new Substitution(R"((\\overline\{)(.*?)(\}))", "${2}", "\\overline{"),
      new Substitution(R"((\\boxed\{)(.*)(\}))", "${2}", "\\boxed{"),
      new Substitution(R"((frac)([^{])(.))", "frac{${2}}{${3}}", "frac"),
      new Substitution(R"((sqrt)([^{]))", "sqrt{${2}}", "sqrt"),
  };
  for (const Substitution* regex : kRegexes) s = regex->Apply(std::move(s));
  ReplaceAll(s, "$", "");

  if (IsDigitStringWithoutCommas(s)) ReplaceAll(s, ",", "");
  return PythonStrip(s);
}

Verdict GradeMathResponse(std::string_view response, std::string_view ground_truth,
                          GradeMode mode) {
  const std::string_view window = LastCodePoints(response, 300);
  const std::optional<std::string> boxed = LastBoxedOnly(window);
  // remove_boxed: the text between "\boxed{" and the final "}".
  const std::string extracted =
      boxed ? boxed->substr(7, boxed->size() - 8) : std::string("[INVALID]");
  std::string predicted = NormalizeFinalAnswer(extracted);
  std::string expected = NormalizeFinalAnswer(ground_truth);
  if (predicted == expected) return Verdict::Correct(std::move(predicted), std::move(expected));
  if (!boxed) {
    return Verdict::Incorrect(std::move(predicted), std::move(expected),
                              "no \\boxed{} in the last 300 characters");
  }
  std::string reason;
  switch (mode) {
    case GradeMode::kStrict:
      reason = absl::StrCat("'", predicted, "' != '", expected, "'");
      break;
    case GradeMode::kEquivalent: {
      AnswerComparison comparison = CompareAnswers(predicted, expected);
      if (comparison.outcome == Equivalence::kEqual) {
        return Verdict::Correct(std::move(predicted), std::move(expected));
      }
      reason = std::move(comparison.explanation);
      break;
    }
  }
  return Verdict::Incorrect(std::move(predicted), std::move(expected), std::move(reason));
}

}  // namespace deepsearch
