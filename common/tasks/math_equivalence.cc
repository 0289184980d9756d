#include "common/tasks/math_equivalence.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace deepsearch {
namespace {

__extension__ using Int128 = __int128;

// Every numerator and denominator stays below 2^120 in magnitude, so negation and the sign
// normalisation can never overflow, and a checked product of two of them is exact or refused.
constexpr Int128 kLimit = Int128{1} << 120;
constexpr int kMaxDepth = 32;  // brackets, braces and fractions nested deeper are refused
constexpr std::string_view kTooLarge = "number too large";
constexpr std::string_view kDivisionByZero = "division by zero";

Int128 Abs(Int128 v) { return v < 0 ? -v : v; }

Int128 Gcd(Int128 a, Int128 b) {
  a = Abs(a);
  b = Abs(b);
  while (b != 0) {
    const Int128 r = a % b;
    a = b;
    b = r;
  }
  return a;
}

std::string ToString(Int128 v) {
  if (v == 0) return "0";
  const bool negative = v < 0;
  v = Abs(v);
  std::string digits;
  while (v > 0) {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  }
  return negative ? "-" + digits : digits;
}

// An exact rational, reduced, with a positive denominator.
struct Rational {
  Int128 num = 0;
  Int128 den = 1;

  friend bool operator==(const Rational&, const Rational&) = default;
  std::string ToString() const {
    return den == 1 ? deepsearch::ToString(num)
                    : deepsearch::ToString(num) + "/" + deepsearch::ToString(den);
  }
};

// num/den reduced; `error` names the failure.
std::optional<Rational> MakeRational(Int128 num, Int128 den, std::string& error) {
  if (den == 0) {
    error = kDivisionByZero;
    return std::nullopt;
  }
  if (Abs(num) >= kLimit || Abs(den) >= kLimit) {
    error = kTooLarge;
    return std::nullopt;
  }
  if (den < 0) {
    num = -num;
    den = -den;
  }
  const Int128 g = Gcd(num, den);
  return Rational{num / g, den / g};
}

std::optional<Rational> Divide(const Rational& a, const Rational& b, std::string& error) {
  Int128 num = 0, den = 0;
  if (b.num == 0) {
    error = kDivisionByZero;
    return std::nullopt;
  }
  if (__builtin_mul_overflow(a.num, b.den, &num) || __builtin_mul_overflow(a.den, b.num, &den)) {
    error = kTooLarge;
    return std::nullopt;
  }
  return MakeRational(num, den, error);
}

// ---- the value model ----------------------------------------------------------------------

struct Value {
  enum class Kind { kNumber, kInfinity, kText, kTuple, kSet, kList };
  Kind kind = Kind::kText;
  Rational number;           // kNumber
  bool percent = false;      // kNumber
  int sign = 1;              // kInfinity
  std::string text;          // kText: the cleaned text
  std::string problem;       // kText: why it is no number, when that is known
  char open = 0, close = 0;  // kTuple: the brackets
  std::vector<Value> elements;
};

std::string Join(const std::vector<Value>& elements);

std::string Display(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNumber:
      return v.number.ToString() + (v.percent ? "%" : "");
    case Value::Kind::kInfinity:
      return v.sign < 0 ? "-\\infty" : "\\infty";
    case Value::Kind::kText:
      return v.text;
    case Value::Kind::kTuple: {
      std::string out(1, v.open);
      out += Join(v.elements);
      out += v.close;
      return out;
    }
    case Value::Kind::kSet: {
      std::string out = "\\{";
      out += Join(v.elements);
      out += "\\}";
      return out;
    }
    case Value::Kind::kList:
      return Join(v.elements);
  }
  return v.text;
}

std::string Join(const std::vector<Value>& elements) {
  std::string out;
  for (size_t i = 0; i < elements.size(); ++i) {
    if (i > 0) out += ", ";
    out += Display(elements[i]);
  }
  return out;
}

// ---- scanning -----------------------------------------------------------------------------

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}
bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The bracket depth change of the token at `i`, advancing `i` past it. "(", "[", "{" and "\{"
// open; ")", "]", "}" and "\}" close (any closer matches any opener: "[1, 2)" is one group).
// Other escapes ("\,", "\%", "\\") are one token that changes nothing.
int Step(std::string_view s, size_t& i) {
  if (s[i] == '\\' && i + 1 < s.size()) {
    const char next = s[i + 1];
    i += 2;
    return next == '{' ? 1 : next == '}' ? -1 : 0;
  }
  const char c = s[i++];
  if (c == '(' || c == '[' || c == '{') return 1;
  if (c == ')' || c == ']' || c == '}') return -1;
  return 0;
}

// Whether `s` is one bracket group: it opens at 0 and first returns to depth 0 at its end.
bool IsOneGroup(std::string_view s) {
  int depth = 0;
  size_t i = 0;
  while (i < s.size()) {
    depth += Step(s, i);
    if (depth <= 0) return depth == 0 && i == s.size();
  }
  return false;
}

// `s` split at `separator` outside every bracket group (escaped separators do not count).
std::vector<std::string_view> SplitTopLevel(std::string_view s, char separator) {
  std::vector<std::string_view> parts;
  int depth = 0;
  size_t start = 0, i = 0;
  while (i < s.size()) {
    if (depth == 0 && s[i] == separator) {
      parts.push_back(s.substr(start, i - start));
      start = ++i;
      continue;
    }
    depth += Step(s, i);
  }
  parts.push_back(s.substr(start));
  return parts;
}

// The position just past the '}' matching the '{' at `open` (escaped braces do not count), or
// npos.
size_t BraceEnd(std::string_view s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '{') {
      ++depth;
    } else if (s[i] == '}' && --depth == 0) {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

void ReplaceAll(std::string& s, std::string_view from, std::string_view to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

// ---- cleaning: wrappers that do not change a value ----------------------------------------

std::string Clean(std::string_view answer) {
  std::string s(answer);
  ReplaceAll(s, "\\displaystyle", "");
  ReplaceAll(s, "\\dfrac", "\\frac");
  ReplaceAll(s, "\\tfrac", "\\frac");
  // \left and \right before a delimiter; "\left." and "\right." are invisible.
  for (std::string_view command : {"\\left", "\\right"}) {
    for (size_t pos = s.find(command); pos != std::string::npos; pos = s.find(command, pos)) {
      const std::string_view rest = std::string_view(s).substr(pos + command.size());
      size_t drop = 0;
      if (StartsWith(rest, ".")) {
        drop = 1;
      } else if (!rest.empty() && std::string_view("()[]|").find(rest[0]) != std::string::npos) {
        drop = 0;
      } else if (StartsWith(rest, "\\{") || StartsWith(rest, "\\}")) {
        drop = 0;
      } else {
        pos += command.size();  // \rightarrow, \leftrightarrow, ...: not a sizing command
        continue;
      }
      s.erase(pos, command.size() + drop);
    }
  }
  // \mathrm{X} and \text{X} -> X.
  for (std::string_view command : {"\\mathrm{", "\\text{"}) {
    for (size_t pos = s.find(command); pos != std::string::npos; pos = s.find(command, pos)) {
      const size_t open = pos + command.size() - 1;
      const size_t end = BraceEnd(s, open);
      if (end == std::string::npos) break;
      s.erase(end - 1, 1);
      s.erase(pos, command.size());
    }
  }
  ReplaceAll(s, "^{\\circ}", "");
  ReplaceAll(s, "^\\circ", "");
  ReplaceAll(s, "\xC2\xB0", "");  // U+00B0 DEGREE SIGN
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// ---- parsing ------------------------------------------------------------------------------

class Parser {
 public:
  Value ParseValue(std::string_view s) {
    Nesting nesting(this);
    if (depth_ > kMaxDepth) return Text(s, "nested too deeply");
    if (StartsWith(s, "\\{") && EndsWith(s, "\\}") && IsOneGroup(s)) {
      Value set;
      set.kind = Value::Kind::kSet;
      for (std::string_view part : SplitTopLevel(s.substr(2, s.size() - 4), ',')) {
        set.elements.push_back(ParseValue(part));
      }
      return set;
    }
    if (s.size() >= 2 && (s[0] == '(' || s[0] == '[') && (s.back() == ')' || s.back() == ']') &&
        IsOneGroup(s)) {
      const std::string_view inner = s.substr(1, s.size() - 2);
      std::vector<std::string_view> parts = SplitTopLevel(inner, ',');
      if (parts.size() == 1 && s[0] == '(' && s.back() == ')') return ParseValue(inner);
      Value tuple;
      tuple.kind = Value::Kind::kTuple;
      tuple.open = s[0];
      tuple.close = s.back();
      for (std::string_view part : parts) tuple.elements.push_back(ParseValue(part));
      return tuple;
    }
    if (s.size() >= 2 && s[0] == '{' && s.back() == '}' && IsOneGroup(s)) {
      return ParseValue(s.substr(1, s.size() - 2));
    }
    std::string problem;
    std::optional<Value> scalar = ParseScalar(s, problem);
    if (scalar) return *std::move(scalar);
    std::vector<std::string_view> parts = SplitTopLevel(s, ',');
    if (parts.size() > 1) {
      Value list;
      list.kind = Value::Kind::kList;
      for (std::string_view part : parts) list.elements.push_back(ParseValue(part));
      return list;
    }
    return Text(s, std::move(problem));
  }

 private:
  // Counts the nesting of the recursive calls.
  struct Nesting {
    explicit Nesting(Parser* parser) : parser(parser) { ++parser->depth_; }
    ~Nesting() { --parser->depth_; }
    Parser* parser;
  };

  static Value Text(std::string_view s, std::string problem) {
    Value v;
    v.text = std::string(s);
    v.problem = std::move(problem);
    return v;
  }

  // A number with an optional percent sign, or a signed \infty.
  std::optional<Value> ParseScalar(std::string_view s, std::string& error) {
    Value v;
    v.kind = Value::Kind::kNumber;
    if (EndsWith(s, "\\%")) {
      v.percent = true;
      s.remove_suffix(2);
    } else if (EndsWith(s, "%")) {
      v.percent = true;
      s.remove_suffix(1);
    }
    std::string_view unsigned_part = s;
    const int sign = StripSign(unsigned_part);
    if (unsigned_part == "\\infty" && !v.percent) {
      v.kind = Value::Kind::kInfinity;
      v.sign = sign;
      return v;
    }
    std::optional<Rational> number = ParseRatio(s, error);
    if (!number) return std::nullopt;
    v.number = *number;
    return v;
  }

  // a or a/b, each side a signed term.
  std::optional<Rational> ParseRatio(std::string_view s, std::string& error) {
    Nesting nesting(this);
    if (depth_ > kMaxDepth) return std::nullopt;
    const std::vector<std::string_view> parts = SplitTopLevel(s, '/');
    if (parts.size() > 2) return std::nullopt;
    std::optional<Rational> a = ParseSigned(parts[0], error);
    if (!a || parts.size() == 1) return a;
    std::optional<Rational> b = ParseSigned(parts[1], error);
    if (!b) return std::nullopt;
    return Divide(*a, *b, error);
  }

  // Removes one leading sign; returns -1 for a minus, else 1.
  static int StripSign(std::string_view& s) {
    if (StartsWith(s, "+")) {
      s.remove_prefix(1);
    } else if (StartsWith(s, "-")) {
      s.remove_prefix(1);
      return -1;
    } else if (StartsWith(s, "\xE2\x88\x92")) {  // U+2212 MINUS SIGN
      s.remove_prefix(3);
      return -1;
    }
    return 1;
  }

  std::optional<Rational> ParseSigned(std::string_view s, std::string& error) {
    const int sign = StripSign(s);
    std::optional<Rational> term = ParseTerm(s, error);
    if (term && sign < 0) term->num = -term->num;
    return term;
  }

  // \frac{a}{b}, (a), {a} or a decimal.
  std::optional<Rational> ParseTerm(std::string_view s, std::string& error) {
    if (StartsWith(s, "\\frac{")) {
      const size_t numerator_end = BraceEnd(s, 5);
      if (numerator_end == std::string_view::npos || numerator_end >= s.size() ||
          s[numerator_end] != '{' || BraceEnd(s, numerator_end) != s.size()) {
        return std::nullopt;
      }
      std::optional<Rational> a = ParseRatio(s.substr(6, numerator_end - 7), error);
      if (!a) return std::nullopt;
      std::optional<Rational> b =
          ParseRatio(s.substr(numerator_end + 1, s.size() - numerator_end - 2), error);
      if (!b) return std::nullopt;
      return Divide(*a, *b, error);
    }
    if (s.size() >= 2 && ((s[0] == '(' && s.back() == ')') || (s[0] == '{' && s.back() == '}')) &&
        IsOneGroup(s)) {
      return ParseRatio(s.substr(1, s.size() - 2), error);
    }
    return ParseDecimal(s, error);
  }

  // Digits, optionally in groups of three, then optionally '.' and digits.
  static std::optional<Rational> ParseDecimal(std::string_view s, std::string& error) {
    const size_t point = s.find('.');
    std::string_view whole = s.substr(0, point);
    std::string_view fraction =
        point == std::string_view::npos ? std::string_view() : s.substr(point + 1);
    if (whole.empty() && fraction.empty()) return std::nullopt;
    std::string digits;
    if (!UngroupDigits(whole, digits)) return std::nullopt;
    for (char c : fraction) {
      if (c < '0' || c > '9') return std::nullopt;
    }
    while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
    digits += fraction;
    // 36 digits fit below kLimit (2^120 > 1.3e36).
    size_t first = digits.find_first_not_of('0');
    if (first == std::string::npos) first = digits.size();
    if (digits.size() - first > 36 || fraction.size() > 36) {
      error = kTooLarge;
      return std::nullopt;
    }
    Int128 num = 0, den = 1;
    for (size_t i = first; i < digits.size(); ++i) num = num * 10 + (digits[i] - '0');
    for (size_t i = 0; i < fraction.size(); ++i) den *= 10;
    return MakeRational(num, den, error);
  }

  // The ASCII digits of `whole`, either plain or in groups of three separated by one of the
  // separators (the first group one to three digits).
  static bool UngroupDigits(std::string_view whole, std::string& digits) {
    // "\\," before ",", which it contains.
    static constexpr std::string_view kSeparators[] = {"\\,", ",", "\xE2\x80\x89", "\xE2\x80\xAF"};
    auto all_digits = [](std::string_view group) {
      for (char c : group) {
        if (c < '0' || c > '9') return false;
      }
      return true;
    };
    for (std::string_view separator : kSeparators) {
      if (whole.find(separator) == std::string_view::npos) continue;
      size_t start = 0;
      for (bool first = true;; first = false) {
        const size_t end = whole.find(separator, start);
        const std::string_view group = whole.substr(start, end - start);
        const bool size_ok = first ? (!group.empty() && group.size() <= 3) : group.size() == 3;
        if (!size_ok || !all_digits(group)) return false;
        digits += group;
        if (end == std::string_view::npos) return true;
        start = end + separator.size();
      }
    }
    if (!all_digits(whole)) return false;
    digits += whole;
    return true;
  }

  int depth_ = 0;
};

// ---- comparison ---------------------------------------------------------------------------

struct Outcome {
  Equivalence equivalence = Equivalence::kUnknown;
  std::string detail;  // for kUnknown, when something specific is known
};

Outcome Compare(const Value& a, const Value& b);

// In order, element by element: any provable difference decides; else any unknown.
Outcome CompareInOrder(const std::vector<Value>& a, const std::vector<Value>& b) {
  if (a.size() != b.size()) return {Equivalence::kNotEqual, ""};
  Outcome unknown{Equivalence::kEqual, ""};
  for (size_t i = 0; i < a.size(); ++i) {
    Outcome o = Compare(a[i], b[i]);
    if (o.equivalence == Equivalence::kNotEqual) return o;
    if (o.equivalence == Equivalence::kUnknown && unknown.equivalence == Equivalence::kEqual) {
      unknown = std::move(o);
    }
  }
  return unknown;
}

// Whether every element of `a` equals some element of `b`; kUnknown when one has no equal
// match but could not be compared with some element.
Outcome Covers(const std::vector<Value>& a, const std::vector<Value>& b) {
  Outcome result{Equivalence::kEqual, ""};
  for (const Value& x : a) {
    bool matched = false;
    Outcome undecided{Equivalence::kNotEqual, ""};
    for (const Value& y : b) {
      Outcome o = Compare(x, y);
      if (o.equivalence == Equivalence::kEqual) {
        matched = true;
        break;
      }
      if (o.equivalence == Equivalence::kUnknown) undecided = std::move(o);
    }
    if (matched) continue;
    if (undecided.equivalence == Equivalence::kNotEqual) return undecided;
    result = std::move(undecided);
  }
  return result;
}

Outcome Compare(const Value& a, const Value& b) {
  using Kind = Value::Kind;
  if (a.kind == Kind::kText || b.kind == Kind::kText) {
    if (a.kind == b.kind && a.text == b.text) return {Equivalence::kEqual, ""};
    return {Equivalence::kUnknown, !a.problem.empty() ? a.problem : b.problem};
  }
  if (a.kind != b.kind) return {Equivalence::kNotEqual, ""};
  switch (a.kind) {
    case Kind::kNumber:
      if (a.percent != b.percent) {
        return {Equivalence::kUnknown, "a percentage and a plain number"};
      }
      return {a.number == b.number ? Equivalence::kEqual : Equivalence::kNotEqual, ""};
    case Kind::kInfinity:
      return {a.sign == b.sign ? Equivalence::kEqual : Equivalence::kNotEqual, ""};
    case Kind::kTuple:
      if (a.open != b.open || a.close != b.close) return {Equivalence::kNotEqual, ""};
      return CompareInOrder(a.elements, b.elements);
    case Kind::kList:
      return CompareInOrder(a.elements, b.elements);
    case Kind::kSet: {
      Outcome forward = Covers(a.elements, b.elements);
      if (forward.equivalence == Equivalence::kNotEqual) return forward;
      Outcome backward = Covers(b.elements, a.elements);
      if (backward.equivalence != Equivalence::kEqual) return backward;
      return forward;
    }
    case Kind::kText:
      break;
  }
  return {Equivalence::kUnknown, ""};
}

}  // namespace

AnswerComparison CompareAnswers(std::string_view predicted, std::string_view expected) {
  const Value a = Parser().ParseValue(Clean(predicted));
  const Value b = Parser().ParseValue(Clean(expected));
  Outcome outcome = Compare(a, b);
  switch (outcome.equivalence) {
    case Equivalence::kEqual:
      return {Equivalence::kEqual, ""};
    case Equivalence::kNotEqual:
      return {Equivalence::kNotEqual, "not equal: " + Display(a) + " != " + Display(b)};
    case Equivalence::kUnknown:
      break;
  }
  std::string explanation =
      "cannot compare '" + std::string(predicted) + "' and '" + std::string(expected) + "'";
  if (!outcome.detail.empty()) explanation += ": " + outcome.detail;
  return {Equivalence::kUnknown, std::move(explanation)};
}

}  // namespace deepsearch
