// Exact equivalence of two normalised math answers: the second stage of
// GradeMode::kEquivalent (math_grader.h), after the strict string comparison has failed.
//
// The strict grader (DeepSearch's compute_score_boxed, DEEPSEARCH_SPEC §1.3) compares
// normalised strings, so "0.5" and "\frac{1}{2}" differ. This reads both answers into a small
// value model and compares values, but only where the notation leaves no doubt; it is not a
// computer algebra system and does not reimplement any of the published graders:
//
//   numbers     integers and decimals with an optional sign ('+', '-', U+2212), digit groups
//               of three separated by ',', '\,', U+2009 or U+202F (one separator throughout:
//               "1,000.5", "1\,000\,000"), fractions \frac{a}{b} (also \dfrac, \tfrac) whose
//               parts are numbers themselves, a/b, signs anywhere ("-\frac{1}{2}",
//               "\frac{-1}{2}", "1/-2"), redundant parentheses or braces; all held as exact
//               rationals (128-bit numerator and denominator, reduced). A number too large
//               for that, or a zero denominator, is refused, never approximated;
//   infinity    \infty with an optional sign, for interval ends;
//   percentages a number followed by '%' or '\%', equal only to another percentage;
//   tuples and  (a, b), [a, b), ...: equal when the brackets are the same and the elements are
//   intervals   equal in order;
//   sets        \{a, b\}: equal when every element of each has an equal element in the other;
//   lists       a, b without brackets: equal element by element, in order. A string that
//               reads as a number with digit groups ("-1,000") is that number, as the strict
//               normaliser itself reads "1,000" as 1000;
//   anything    else is opaque text, equal only to the same text.
//
// Before parsing, wrappers that do not change a value are removed: \left and \right before a
// delimiter, \displaystyle, \mathrm{...} and \text{...} (the braces go, the content stays),
// ^\circ, ^{\circ} and the degree sign, one trailing '.'.
//
// The comparison never accepts what it cannot justify: no symbolic algebra ("x+1" vs "1+x"),
// no floating-point tolerance ("0.333" vs "\frac{1}{3}"), no arithmetic beyond a single
// fraction ("1+1" vs "2"), no scientific notation or powers ("10^3" vs "1000"), no mixed
// numbers ("1\frac{1}{2}" vs "1.5": juxtaposition is ambiguous), no other digit scripts.
//
// Thread-safe (no shared state).
#pragma once

#include <string>
#include <string_view>

namespace deepsearch {

enum class Equivalence {
  kEqual,     // provably the same value
  kNotEqual,  // provably different values (or different kinds: a tuple and a number)
  kUnknown,   // cannot be decided: text that differs, a percentage against a plain number, ...
};

struct AnswerComparison {
  Equivalence outcome = Equivalence::kUnknown;
  // Empty when equal; otherwise the reason, for Verdict::reason:
  //   "not equal: 1/2 != 2/3", "not equal: (1, 2] != [1, 2]",
  //   "cannot compare '\sqrt{2}' and '1.414'",
  //   "cannot compare '50\%' and '0.5': a percentage and a plain number".
  std::string explanation;
};

// Compares two answers that NormalizeFinalAnswer has already normalised (UTF-8).
AnswerComparison CompareAnswers(std::string_view predicted, std::string_view expected);

}  // namespace deepsearch
