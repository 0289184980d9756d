// GradeMode::kEquivalent: exact value comparison after the strict one, and everything it must
// refuse (math_equivalence.h).
#include "common/tasks/math_equivalence.h"

#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/tasks/math_grader.h"
#include "common/tasks/task.h"

namespace deepsearch {
namespace {

using ::testing::HasSubstr;

struct EquivalenceCase {
  const char* what;
  std::string boxed;  // the content of the response's box
  std::string ground_truth;
  bool correct = false;
  // The whole reason when not empty (checked only for wrong answers).
  std::string reason;
};

std::vector<EquivalenceCase> EquivalenceCases() {
  const std::string big(41, '9');
  const std::string deep = std::string(40, '(') + "5" + std::string(40, ')');
  return {
      // ---- accepted: numbers ----
      {"decimal vs fraction", "0.5", "\\frac{1}{2}", true, ""},
      {"leading point vs shorthand fraction", ".5", "\\frac12", true, ""},
      {"trailing zero vs a/b", "0.50", "1/2", true, ""},
      {"\\dfrac", "\\dfrac{1}{2}", "0.5", true, ""},
      {"\\tfrac", "\\tfrac{1}{2}", "\\frac{1}{2}", true, ""},
      {"unreduced fraction", "\\frac{2}{4}", "\\frac{1}{2}", true, ""},
      {"sign before vs inside the fraction", "-\\frac{1}{2}", "\\frac{-1}{2}", true, ""},
      {"sign in the denominator", "\\frac{1}{-2}", "-0.5", true, ""},
      {"a/b with a sign", "-1/2", "-\\frac12", true, ""},
      {"two signs cancel", "-\\frac{-1}{2}", "0.5", true, ""},
      {"leading plus", "+5", "5", true, ""},
      {"integer as decimal", "5.0", "5", true, ""},
      {"leading zeros", "005", "5", true, ""},
      {"comma groups with decimals", "1,000.5", "1000.5", true, ""},
      {"comma groups with a sign", "-1,000", "-1000", true, ""},
      {"thin-space groups", "1\\,000\\,000", "1000000", true, ""},
      {"U+2009 groups", "1\u2009000", "1000", true, ""},
      {"U+202F groups with decimals", "1\u202f000.25", "1000.25", true, ""},
      {"Unicode minus", "\u22123", "-3", true, ""},
      {"nested fraction", "\\frac{\\frac{1}{2}}{2}", "0.25", true, ""},
      {"parenthesised numerator", "(-1)/2", "-0.5", true, ""},
      {"minus of a negative", "-(-2)", "2", true, ""},
      {"negative zero", "-0", "0", true, ""},
      {"equation, then a decimal", "x=0.5", "\\frac{1}{2}", true, ""},
      // ---- accepted: wrappers ----
      {"redundant parentheses", "(5)", "5", true, ""},
      {"redundant braces", "{5}", "5", true, ""},
      {"trailing period", "5.", "5.0", true, ""},
      {"trailing period after a fraction", "\\frac{1}{2}.", "0.5", true, ""},
      {"degree sign", "30\u00b0", "30", true, ""},
      {"\\mathrm{}", "\\mathrm{A}", "A", true, ""},
      {"\\displaystyle", "\\displaystyle\\frac{3}{4}", "0.75", true, ""},
      {"\\left( \\right)", "\\left(1,2\\right)", "(1,2)", true, ""},
      // ---- accepted: percentages, tuples, intervals, sets, lists ----
      {"percent both sides", "50\\%", "50%", true, ""},
      {"percent fractions", "12.5\\%", "\\frac{25}{2}\\%", true, ""},
      {"\\left[ \\right) interval", "\\left[0,1\\right)", "[0,1)", true, ""},
      {"tuple element by element", "(0.5,\\frac{3}{2})", "(\\frac12,1.5)", true, ""},
      {"interval to infinity", "(-\\infty,3]", "(-\\infty,3.0]", true, ""},
      {"signed infinity", "+\\infty", "\\infty", true, ""},
      {"nested tuples", "((1.0,2),(3,4.0))", "((1,2),(3,4))", true, ""},
      {"tuple with text", "(a,0.5)", "(a,\\frac12)", true, ""},
      {"set order", "\\{1,2\\}", "\\{2,1\\}", true, ""},
      {"\\left\\{ set", "\\left\\{3,1,2\\right\\}", "\\{1,2,3\\}", true, ""},
      {"set duplicates", "\\{1,1,2\\}", "\\{1,2\\}", true, ""},
      {"bare list in order", "1/2,3", "0.5,3", true, ""},
      // ---- rejected: not provably equal ----
      {"irrational vs decimal", "\\sqrt{2}", "1.414", false,
       "cannot compare '\\sqrt{2}' and '1.414'"},
      {"no tolerance", "0.333", "\\frac{1}{3}", false, "not equal: 333/1000 != 1/3"},
      {"different fractions", "\\frac{1}{2}", "\\frac{2}{3}", false, "not equal: 1/2 != 2/3"},
      {"integer vs fraction", "2", "\\frac{2}{3}", false, "not equal: 2 != 2/3"},
      {"percent vs plain", "50\\%", "0.5", false,
       "cannot compare '50\\%' and '0.5': a percentage and a plain number"},
      {"plain vs percent", "0.1", "10%", false,
       "cannot compare '0.1' and '10%': a percentage and a plain number"},
      {"fraction vs percent fraction", "0.5", "\\frac{1}{2}\\%", false, ""},
      {"open vs closed", "(1,2)", "[1,2]", false, "not equal: (1, 2) != [1, 2]"},
      {"half-open the other way", "[1,2)", "[1,2]", false, "not equal: [1, 2) != [1, 2]"},
      {"tuple order matters", "(1,2)", "(2,1)", false, "not equal: (1, 2) != (2, 1)"},
      {"tuple lengths", "(1,2,3)", "(1,2)", false, "not equal: (1, 2, 3) != (1, 2)"},
      {"set vs tuple", "\\{1,2\\}", "(1,2)", false, "not equal: \\{1, 2\\} != (1, 2)"},
      {"set sizes", "\\{1,2\\}", "\\{1,2,3\\}", false, "not equal: \\{1, 2\\} != \\{1, 2, 3\\}"},
      {"set with unknown element", "\\{1,2\\}", "\\{1,x\\}", false,
       "cannot compare '\\{1,2\\}' and '\\{1,x\\}'"},
      {"tuple differing in a number", "(1,x)", "(2,x)", false, "not equal: (1, x) != (2, x)"},
      {"list vs tuple", "-1,2", "(-1,2)", false, "not equal: -1, 2 != (-1, 2)"},
      {"no algebra", "x+1", "1+x", false, "cannot compare 'x+1' and '1+x'"},
      {"no arithmetic", "1+1", "2", false, "cannot compare '1+1' and '2'"},
      {"no sums of decimals", "0.1+0.2", "0.3", false, "cannot compare '0.1+0.2' and '0.3'"},
      {"no constants", "2\\pi", "6.283", false, "cannot compare '2\\pi' and '6.283'"},
      {"no scientific notation", "1e3", "1000", false, "cannot compare '1e3' and '1000'"},
      {"no powers", "10^3", "1000", false, "cannot compare '10^3' and '1000'"},
      {"no negative powers", "2^{-1}", "0.5", false, "cannot compare '2^{-1}' and '0.5'"},
      {"no roots", "\\sqrt{4}", "2", false, "cannot compare '\\sqrt{4}' and '2'"},
      {"no mixed numbers", "1\\frac{1}{2}", "1.5", false,
       "cannot compare '1\\frac{1}{2}' and '1.5'"},
      {"no chained division", "1/2/3", "\\frac{1}{6}", false,
       "cannot compare '1/2/3' and '\\frac{1}{6}'"},
      {"no approximations", "\\approx 3.14", "3.14", false,
       "cannot compare '\\approx3.14' and '3.14'"},
      {"European decimal comma is a digit string", "1,5", "1.5", false, "not equal: 15 != 3/2"},
      {"groups of two digits are no number", "1,00.5", "100.5", false,
       "not equal: 1, 1/2 != 201/2"},
      {"groups of four digits are no number", "-1,0000", "-10000", false,
       "not equal: -1, 0 != -10000"},
      {"mixed separators are no number", "1\\,000,000", "1000000", false,
       "not equal: 1000, 0 != 1000000"},
      {"full-width digits", "\uff13", "3", false, "cannot compare '\uff13' and '3'"},
      {"infinity vs a large number", "\\infty", "1000000", false, "not equal: \\infty != 1000000"},
      {"infinity signs", "-\\infty", "\\infty", false, "not equal: -\\infty != \\infty"},
      {"too large", big, big + ".0", false,
       "cannot compare '" + big + "' and '" + big + ".0': number too large"},
      {"too many decimals", "0." + std::string(40, '0') + "1", "0", false,
       "cannot compare '0." + std::string(40, '0') + "1' and '0': number too large"},
      {"division by zero", "\\frac{1}{0}", "\\frac{2}{0}", false,
       "cannot compare '\\frac{1}{0}' and '\\frac{2}{0}': division by zero"},
      {"nested too deeply", deep, "5", false,
       "cannot compare '" + deep + "' and '5': nested too deeply"},
      {"different words", "a", "b", false, "cannot compare 'a' and 'b'"},
      {"\\text{} unwrapping is not arithmetic", "5\\,\\text{cm}", "5", false,
       "cannot compare '5\\,' and '5'"},
  };
}

TEST(MathEquivalenceTest, AcceptsEqualValuesAndRejectsTheRest) {
  const std::vector<EquivalenceCase> cases = EquivalenceCases();
  EXPECT_GE(cases.size(), 60u);
  int rejected = 0;
  for (const EquivalenceCase& c : cases) {
    const std::string response = "So the answer is \\boxed{" + c.boxed + "}.";
    const Verdict v = GradeMathResponse(response, c.ground_truth, GradeMode::kEquivalent);
    EXPECT_EQ(v.correct, c.correct) << c.what << ": " << v.reason;
    EXPECT_EQ(v.reward, c.correct ? 1.0 : -1.0) << c.what;
    // The normalised strings are the strict grader's in both modes.
    const Verdict strict = GradeMathResponse(response, c.ground_truth, GradeMode::kStrict);
    EXPECT_EQ(v.predicted, strict.predicted) << c.what;
    EXPECT_EQ(v.expected, strict.expected) << c.what;
    if (c.correct) {
      EXPECT_TRUE(v.reason.empty()) << c.what;
      // These cases are here because the strict grader refuses them.
      EXPECT_FALSE(strict.correct) << c.what << " is already strictly correct";
    } else {
      ++rejected;
      if (!c.reason.empty()) {
        EXPECT_EQ(v.reason, c.reason) << c.what;
      }
      EXPECT_FALSE(v.reason.empty()) << c.what;
    }
  }
  EXPECT_GE(rejected, 30);
}

TEST(MathEquivalenceTest, AcceptsEverythingStrictAccepts) {
  for (const auto& [response, truth] : std::vector<std::pair<std::string, std::string>>{
           {"\\boxed{\\frac12}", "\\frac{1}{2}"},
           {"no box", "[INVALID]"},
           {"\\boxed{x^2+1}", "x^2+1"},
           {"\\boxed{1,000}", "1000"},
       }) {
    ASSERT_TRUE(GradeMathResponse(response, truth, GradeMode::kStrict).correct) << response;
    EXPECT_TRUE(GradeMathResponse(response, truth, GradeMode::kEquivalent).correct) << response;
  }
}

TEST(MathEquivalenceTest, NoBoxStaysWrong) {
  const Verdict v = GradeMathResponse("the answer is 0.5", "\\frac12", GradeMode::kEquivalent);
  EXPECT_FALSE(v.correct);
  EXPECT_EQ(v.predicted, "[INVALID]");
  EXPECT_EQ(v.reason, "no \\boxed{} in the last 300 characters");
}

TEST(MathEquivalenceTest, CompareAnswersOutcomes) {
  EXPECT_EQ(CompareAnswers("0.5", "\\frac{1}{2}").outcome, Equivalence::kEqual);
  EXPECT_EQ(CompareAnswers("0.5", "\\frac{1}{2}").explanation, "");
  EXPECT_EQ(CompareAnswers("0.5", "0.25").outcome, Equivalence::kNotEqual);
  EXPECT_EQ(CompareAnswers("\\sqrt{2}", "1.414").outcome, Equivalence::kUnknown);
  EXPECT_EQ(CompareAnswers("(1,2)", "3").outcome, Equivalence::kNotEqual);
  EXPECT_EQ(CompareAnswers("", "").outcome, Equivalence::kEqual);
  EXPECT_EQ(CompareAnswers("", "0").outcome, Equivalence::kUnknown);
  // 36 significant digits are the most a number may have.
  const std::string max(36, '9');
  EXPECT_EQ(CompareAnswers(max, max + ".0").outcome, Equivalence::kEqual);
  EXPECT_EQ(CompareAnswers(max + "9", max + "9.0").outcome, Equivalence::kUnknown);
  // A product past the limit is refused, not wrapped around.
  EXPECT_THAT(
      CompareAnswers("\\frac{" + max + "}{0." + std::string(35, '0') + "1}", "1").explanation,
      HasSubstr("number too large"));
}

// Random strings from the parser's alphabet, random numbers in several notations and random
// intervals (fixed seed): the comparison is reflexive and symmetric, and numbers compare by
// their exact value.
TEST(MathEquivalenceTest, ReflexiveAndSymmetricOnRandomStrings) {
  static constexpr const char* kTokens[] = {"1",
                                            "2",
                                            "0",
                                            "5",
                                            "9",
                                            ".",
                                            ",",
                                            "-",
                                            "+",
                                            "/",
                                            "%",
                                            "\\%",
                                            "(",
                                            ")",
                                            "[",
                                            "]",
                                            "{",
                                            "}",
                                            "\\{",
                                            "\\}",
                                            "\\,",
                                            "\\frac{",
                                            "\\dfrac{",
                                            "\\infty",
                                            "\\left",
                                            "\\right",
                                            "\\left(",
                                            "\\right)",
                                            "\\mathrm{",
                                            "\\text{",
                                            "x",
                                            "^\\circ",
                                            "\xC2\xB0",
                                            "\\displaystyle",
                                            "\xE2\x88\x92",
                                            "\xE2\x80\x89",
                                            " ",
                                            "\\"};
  std::mt19937 rng(20251125);
  auto random_answer = [&rng] {
    std::string s;
    const int n = static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) s += kTokens[rng() % std::size(kTokens)];
    return s;
  };
  // p/q for small p and q in one of several notations.
  struct Number {
    std::string text;
    int p = 0, q = 1;
  };
  auto random_number = [&rng] {
    const int p = static_cast<int>(rng() % 9) - 4, q = static_cast<int>(rng() % 4) + 1;
    const std::string ps = std::to_string(p), qs = std::to_string(q);
    switch (rng() % 4) {
      case 0:
        return Number{ps + "/" + qs, p, q};
      case 1:
        return Number{"\\frac{" + ps + "}{" + qs + "}", p, q};
      case 2:
        return Number{"(" + ps + ")/" + qs, p, q};
      default: {  // a decimal when q divides 100
        if (q == 3) return Number{"\\dfrac{" + ps + "}{3}", p, q};
        const int hundredths = p * (100 / q);
        const int magnitude = hundredths < 0 ? -hundredths : hundredths;
        return Number{(hundredths < 0 ? "-" : "") + std::to_string(magnitude / 100) + "." +
                          std::to_string(magnitude % 100 / 10) + std::to_string(magnitude % 10),
                      p, q};
      }
    }
  };
  auto random_tuple = [&] {
    return std::string(rng() % 2 ? "(" : "[") + random_number().text + "," + random_number().text +
           (rng() % 2 ? ")" : "]");
  };
  int equal = 0, not_equal = 0, unknown = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string a, b;
    switch (i % 4) {
      case 0:
        a = random_answer();
        b = a + ".";
        break;
      case 1:
        a = random_answer();
        b = random_answer();
        break;
      case 2: {
        const Number x = random_number(), y = random_number();
        a = x.text;
        b = y.text;
        // Numbers are compared by value, exactly.
        ASSERT_EQ(CompareAnswers(a, b).outcome,
                  x.p * y.q == y.p * x.q ? Equivalence::kEqual : Equivalence::kNotEqual)
            << a << " vs " << b;
        break;
      }
      default:
        a = random_tuple();
        b = random_tuple();
        break;
    }
    ASSERT_EQ(CompareAnswers(a, a).outcome, Equivalence::kEqual) << a;
    const AnswerComparison ab = CompareAnswers(a, b), ba = CompareAnswers(b, a);
    ASSERT_EQ(ab.outcome, ba.outcome) << "'" << a << "' vs '" << b << "'";
    ASSERT_EQ(ab.explanation.empty(), ab.outcome == Equivalence::kEqual) << a << " vs " << b;
    equal += ab.outcome == Equivalence::kEqual;
    not_equal += ab.outcome == Equivalence::kNotEqual;
    unknown += ab.outcome == Equivalence::kUnknown;
  }
  // Every outcome occurs, so the properties are not checked on one kind of answer only.
  EXPECT_GT(equal, 100);
  EXPECT_GT(not_equal, 100);
  EXPECT_GT(unknown, 100);
}

TEST(MathEquivalenceTest, TaskSpecChoosesTheMode) {
  Problem p;
  p.answer = "\\frac{1}{2}";
  absl::StatusOr<std::unique_ptr<TaskFamily>> strict = MakeTaskFamily("math:mode=strict");
  absl::StatusOr<std::unique_ptr<TaskFamily>> equivalent = MakeTaskFamily("math:mode=equivalent");
  ASSERT_TRUE(strict.ok()) << strict.status();
  ASSERT_TRUE(equivalent.ok()) << equivalent.status();
  EXPECT_EQ((*strict)->spec(), "math:mode=strict");
  EXPECT_EQ((*equivalent)->spec(), "math:mode=equivalent");
  EXPECT_FALSE((*strict)->Verify(p, "\\boxed{0.5}").correct);
  EXPECT_TRUE((*equivalent)->Verify(p, "\\boxed{0.5}").correct);
  EXPECT_EQ((*MakeTaskFamily("math"))->spec(), "math:mode=strict");
  EXPECT_THAT(std::string(MakeTaskFamily("math:mode=loose").status().message()),
              HasSubstr("mode must be strict or equivalent, got 'loose'"));
}

}  // namespace
}  // namespace deepsearch
