// The strict math grader against the Python oracle (tests/data/grader/strict_golden.jsonl,
// made by reference_grader.py: DeepSearch's compute_score_boxed) and a hand-written table of
// cases, each naming the normalisation rule or extraction corner it exercises.
#include "common/tasks/math_grader.h"

#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/tasks/math_equivalence.h"

namespace deepsearch {
namespace {

std::string GoldenPath() {
  const char* root = std::getenv("DEEPSEARCH_SOURCE_DIR");
  return std::string(root != nullptr ? root : ".") + "/tests/data/grader/strict_golden.jsonl";
}

TEST(MathGraderGoldenTest, AgreesWithTheReferenceOnEveryRecord) {
  std::ifstream in(GoldenPath());
  ASSERT_TRUE(in.good()) << "cannot open " << GoldenPath();
  int records = 0, correct = 0, disagreements = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++records;
    const nlohmann::json record = nlohmann::json::parse(line);
    const std::string response = record.at("response");
    const std::string answer = record.at("answer");
    const Verdict v = GradeMathResponse(response, answer, GradeMode::kStrict);
    const bool expected_correct = record.at("correct");
    correct += expected_correct;
    const bool agrees = v.correct == expected_correct && v.predicted == record.at("pred") &&
                        v.expected == record.at("gt") &&
                        v.reward == (expected_correct ? 1.0 : -1.0) &&
                        v.reason.empty() == expected_correct;
    // The equivalent mode accepts everything the strict one does, with the same strings, and
    // its comparison does not depend on the order of its arguments.
    const Verdict equivalent = GradeMathResponse(response, answer, GradeMode::kEquivalent);
    EXPECT_TRUE(!v.correct || equivalent.correct) << "line " << records;
    EXPECT_EQ(equivalent.predicted, v.predicted) << "line " << records;
    EXPECT_EQ(equivalent.expected, v.expected) << "line " << records;
    EXPECT_EQ(CompareAnswers(v.predicted, v.expected).outcome,
              CompareAnswers(v.expected, v.predicted).outcome)
        << "line " << records;
    if (!agrees) {
      ++disagreements;
      ADD_FAILURE() << "line " << records << " (" << record.at("case").get<std::string>()
                    << "): response " << nlohmann::json(response).dump() << ", answer "
                    << nlohmann::json(answer).dump()
                    << "\n  reference: correct=" << expected_correct
                    << " pred=" << record.at("pred").dump() << " gt=" << record.at("gt").dump()
                    << "\n  C++:       correct=" << v.correct
                    << " pred=" << nlohmann::json(v.predicted).dump()
                    << " gt=" << nlohmann::json(v.expected).dump();
    }
  }
  EXPECT_GE(records, 400);
  // Both verdicts are well represented, so agreement is not won by always saying one thing.
  EXPECT_GE(correct, records / 4);
  EXPECT_GE(records - correct, records / 4);
  EXPECT_EQ(disagreements, 0) << "of " << records << " records";
}

// One row of the hand-written table: a response, a ground truth, the verdict and the
// normalised prediction expected.
struct Case {
  const char* rule;
  std::string response;
  std::string ground_truth;
  bool correct = false;
  std::string pred;
};

std::string Repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

std::vector<Case> TableCases() {
  const std::string x = "x";
  return {
      // ---- normalisation 1: only the text after the last '=' ----
      {"= keeps the right-hand side", "\\boxed{x=5}", "5", true, "5"},
      {"= the last of several", "\\boxed{a=b=3}", "3", true, "3"},
      {"= at the end leaves nothing", "\\boxed{5=}", "", true, ""},
      {"= in both", "\\boxed{x = 5}", "x=5", true, "5"},
      {"= a function definition", "\\boxed{f(x)=x^2}", "x^2", true, "x^2"},
      {"= two equations keep the last value", "\\boxed{x=5,y=6}", "(5,6)", false, "6"},
      {"= \\geq is not '='", "\\boxed{x\\geq 5}", "5", false, "x\\geq5"},
      {"= \\le is kept whole", "\\boxed{x\\le 5}", "x\\le5", true, "x\\le5"},
      {"= inside dollars", "\\boxed{x = $5$}", "5", true, "5"},
      {"= across lines", "\\boxed{x=1\ny=2}", "2", true, "2"},
      // ---- normalisation 2: the ten rewrites ----
      {"rewrite 'an '", "\\boxed{an 8}", "8", true, "8"},
      {"rewrite 'a ' ('a b c' -> 'bc')", "\\boxed{a b c}", "bc", true, "bc"},
      {"rewrite 'a ' at a word's end", "\\boxed{pizza }", "pizz", true, "pizz"},
      {"rewrite 'an ' before 'a '", "\\boxed{an a b}", "b", true, "b"},
      {"rewrite '.$' -> '$'", "\\boxed{$5.$}", "5", true, "5"},
      {"rewrite '\\$' (escaped dollar)", "\\boxed{\\$12}", "12", true, "12"},
      {"rewrite '\\ ' (control space)", "\\boxed{3\\ 4}", "34", true, "34"},
      {"rewrite ' ' (every space)", "\\boxed{1 2 3}", "123", true, "123"},
      {"rewrite mbox -> text", "\\boxed{5\\mbox{ apples}}", "5apples", true, "5apples"},
      {"rewrite ',\\text{and}'", "\\boxed{1, \\text{and} 2}", "1,2", true, "12"},
      {"rewrite '\\text{and}'", "\\boxed{1 \\text{and} 2}", "12", true, "12"},
      {"rewrite '\\text{m}' (metres)", "\\boxed{5\\text{m}}", "5", true, "5"},
      {"rewrite '\\text{m}' then delete '\\text{}^2'", "\\boxed{4 \\text{m}^2}", "4", true, "4"},
      {"rewrite '\\text{m}' needs the brace", "\\boxed{\\text{mm}}", "mm", true, "mm"},
      // ---- normalisation 3: the forty-one deletions, in order ----
      {"delete square", "\\boxed{9 square}", "9", true, "9"},
      {"delete ways", "\\boxed{6 ways}", "6", true, "6"},
      {"delete integers", "\\boxed{4 integers}", "4", true, "4"},
      {"delete dollars", "\\boxed{20 dollars}", "20", true, "20"},
      {"delete mph", "\\boxed{60 mph}", "60", true, "60"},
      {"delete inches", "\\boxed{12 inches}", "12", true, "12"},
      {"delete hours", "\\boxed{3 hours}", "3", true, "3"},
      {"delete km", "\\boxed{10 km}", "10", true, "10"},
      {"delete units", "\\boxed{7 units}", "7", true, "7"},
      {"delete \\ldots", "\\boxed{1,2,\\ldots}", "12", true, "12"},
      {"delete sue", "\\boxed{issue}", "is", true, "is"},
      {"delete points", "\\boxed{15 points}", "15", true, "15"},
      {"delete feet", "\\boxed{8 feet}", "8", true, "8"},
      {"delete minutes", "\\boxed{45 minutes}", "45", true, "45"},
      {"delete digits", "\\boxed{3 digits}", "3", true, "3"},
      {"delete cents", "\\boxed{75 cents}", "75", true, "75"},
      {"delete degrees", "\\boxed{90 degrees}", "90", true, "90"},
      {"delete cm", "\\boxed{5 cm}", "5", true, "5"},
      {"delete gm", "\\boxed{3 gm}", "3", true, "3"},
      {"delete pounds", "\\boxed{2 pounds}", "2", true, "2"},
      {"delete meters", "\\boxed{100 meters}", "100", true, "100"},
      {"delete meals", "\\boxed{6 meals}", "6", true, "6"},
      {"delete edges", "\\boxed{12 edges}", "12", true, "12"},
      {"delete students", "\\boxed{30 students}", "30", true, "30"},
      {"delete childrentickets (after spaces go)", "\\boxed{4 children tickets}", "4", true, "4"},
      {"delete multiples", "\\boxed{5 multiples}", "5", true, "5"},
      {"delete \\text{s}", "\\boxed{3\\text{s}}", "3", true, "3"},
      {"delete \\text{.}", "\\boxed{3\\text{.}}", "3", true, "3"},
      {"delete \\text{<newline>s}", "\\boxed{3\\text{\ns}}", "3", true, "3"},
      {"delete \\text{}^2", "\\boxed{4\\text{}^2}", "4", true, "4"},
      {"delete \\text{}^3", "\\boxed{4\\text{}^3}", "4", true, "4"},
      {"delete \\text{<newline>}", "\\boxed{4\\text{\n}}", "4", true, "4"},
      {"delete \\text{}", "\\boxed{4\\text{}}", "4", true, "4"},
      {"delete \\mathrm{th}", "\\boxed{5\\mathrm{th}}", "5", true, "5"},
      {"delete ^\\circ", "\\boxed{45^\\circ}", "45", true, "45"},
      {"delete ^{\\circ}", "\\boxed{45^{\\circ}}", "45", true, "45"},
      {"delete \\;", "\\boxed{1\\;000}", "1000", true, "1000"},
      {"delete ,\\!", "\\boxed{1,\\!000}", "1000", true, "1000"},
      {"delete {,}", "\\boxed{1{,}000}", "1000", true, "1000"},
      {"delete double quotes", "\\boxed{\"yes\"}", "yes", true, "yes"},
      {"delete \\dots", "\\boxed{1,2,\\dots}", "12", true, "12"},
      {"delete: one pass each, so a word can re-form", "\\boxed{squsquareare}", "", false,
       "square"},
      {"delete cm inside a word", "\\boxed{acme}", "ae", true, "ae"},
      {"delete sue inside a word", "\\boxed{pursue}", "pur", true, "pur"},
      {"delete: km, not a bare m", "\\boxed{5km}", "5", true, "5"},
      // ---- units the lists do not know stay ----
      {"units: kg is kept", "\\boxed{5 kg}", "5", false, "5kg"},
      {"units: seconds is kept", "\\boxed{5 seconds}", "5", false, "5seconds"},
      {"units: \\% is kept", "\\boxed{5\\%}", "5", false, "5\\%"},
      {"units: % is kept", "\\boxed{5%}", "5%", true, "5%"},
      {"units: \\text{ cm}", "\\boxed{5\\text{ cm}}", "5", true, "5"},
      {"units: dollar sign and thousands", "\\boxed{\\$1,000 dollars}", "1000", true, "1000"},
      // ---- normalisation 4: $...$ ----
      {"$ unwrap", "\\boxed{$5$}", "5", true, "5"},
      {"$ unwrap drops the text around", "\\boxed{the value is $5$}", "5", true, "5"},
      {"$ first pair of the line wins", "\\boxed{$x$ and $5$}", "5", false, "x"},
      {"$ single dollar is only deleted", "\\boxed{$5}", "5", true, "5"},
      {"$ five pieces keep the first pair", "\\boxed{a$b$c$d$e}", "b", true, "b"},
      {"$ one pair per line", "\\boxed{$1$\n$2$}", "1\n2", true, "1\n2"},
      {"$ a pair split by a newline does not match", "\\boxed{$1\n2$}", "1\n2", true, "1\n2"},
      {"$ '.' crosses a carriage return", "\\boxed{$1$\r$2$}", "1", true, "1"},
      {"$ '.' crosses U+2028", "\\boxed{$1$\u2028$2$}", "1", true, "1"},
      {"$ empty pair", "\\boxed{$$}", "", true, ""},
      {"$ doubled dollars enclose nothing", "\\boxed{$$5$$}", "5", false, ""},
      // ---- normalisation 4: \text{}, \textbf{}, \overline{}, \boxed{} ----
      {"\\text{} unwrap", "\\boxed{\\text{5}}", "5", true, "5"},
      {"\\text{} stops at the first }", "\\boxed{\\text{{5}}}", "{5}", true, "{5}"},
      {"\\text{} stops at the first } (middle)", "\\boxed{\\text{a{b}c}}", "a{bc}", true, "a{bc}"},
      {"\\text{} does not cross a newline", "\\boxed{\\text{5\n}}", "5", false, "\\text{5\n}"},
      {"\\textbf{} unwrap", "\\boxed{\\textbf{7}}", "7", true, "7"},
      {"\\text{} inside \\textbf{}", "\\boxed{\\textbf{\\text{7}}}", "7", true, "7"},
      {"\\overline{} unwrap", "\\boxed{\\overline{3}}", "3", true, "3"},
      {"\\overline{} repeating decimal", "\\boxed{0.\\overline{3}}", "0.3", true, "0.3"},
      {"\\boxed{} in the ground truth", "\\boxed{5}", "\\boxed{5}", true, "5"},
      {"\\boxed{} greedy to the line's last }", "\\boxed{5}", "\\boxed{1} or \\boxed{5}", false,
       "5"},
      {"\\mbox{} becomes \\text{} and unwraps", "\\boxed{\\mbox{5}}", "5", true, "5"},
      {"\\textit{} is not \\text{}", "\\boxed{\\textit{5}}", "5", false, "\\textit{5}"},
      {"\\mathrm{} is not unwrapped", "\\boxed{\\mathrm{5}}", "5", false, "\\mathrm{5}"},
      // ---- normalisation 4: \frac and \sqrt shorthands ----
      {"\\fracab -> \\frac{a}{b} (digits)", "\\boxed{\\frac12}", "\\frac{1}{2}", true,
       "\\frac{1}{2}"},
      {"\\fracabc -> \\frac{a}{b}c", "\\boxed{\\frac123}", "\\frac{1}{23}", false, "\\frac{1}{2}3"},
      {"\\fracab (letters)", "\\boxed{\\fracab}", "\\frac{a}{b}", true, "\\frac{a}{b}"},
      {"\\fracabc (letters)", "\\boxed{\\fracabc}", "\\frac{a}{b}c", true, "\\frac{a}{b}c"},
      {"\\frac{a}{b} matches \\fracab", "\\boxed{\\frac{1}{2}}", "\\frac12", true, "\\frac{1}{2}"},
      {"\\sqrta -> \\sqrt{a}", "\\boxed{\\sqrt2}", "\\sqrt{2}", true, "\\sqrt{2}"},
      {"\\sqrtab -> \\sqrt{a}b", "\\boxed{\\sqrt23}", "\\sqrt{23}", false, "\\sqrt{2}3"},
      {"\\sqrt after a coefficient", "\\boxed{2\\sqrt3}", "2\\sqrt{3}", true, "2\\sqrt{3}"},
      {"\\frac with spaces", "\\boxed{\\frac 1 2}", "\\frac{1}{2}", true, "\\frac{1}{2}"},
      {"\\dfrac is not \\frac", "\\boxed{\\dfrac12}", "\\frac12", false, "\\dfrac{1}{2}"},
      {"\\frac1{2}: the brace is taken as b", "\\boxed{\\frac1{2}}", "\\frac12", false,
       "\\frac{1}{{}2}"},
      {"\\frac{1}2 is left alone", "\\boxed{\\frac{1}2}", "\\frac12", false, "\\frac{1}2"},
      {"\\frac: a newline may be a", "\\boxed{\\frac\n12}", "", false, "\\frac{\n}{1}2"},
      {"\\frac: a newline may not be b", "\\boxed{\\frac1\n2}", "", false, "\\frac1\n2"},
      {"\\sqrt: a newline may be a", "\\boxed{\\sqrt\n2}", "", false, "\\sqrt{\n}2"},
      {"\\sqrt with an index", "\\boxed{\\sqrt[3]{2}}", "\\sqrt[3]{2}", true, "\\sqrt{[}3]{2}"},
      {"\\frac at the end", "\\boxed{\\frac}", "\\frac", true, "\\frac"},
      {"\\frac matches do not overlap", "\\boxed{\\fracfrac12}", "", false, "\\frac{f}{r}ac12"},
      {"\\frac before a command", "\\boxed{\\frac\\pi2}", "", false, "\\frac{\\}{p}i2"},
      {"\\frac with a sign", "\\boxed{-\\frac12}", "-\\frac{1}{2}", true, "-\\frac{1}{2}"},
      {"\\sqrt matches do not overlap", "\\boxed{\\sqrtsqrt2}", "", false, "\\sqrt{s}qrt2"},
      // ---- normalisation 6: commas out of digit strings ----
      {"commas: thousands", "\\boxed{1,000}", "1000", true, "1000"},
      {"commas: millions", "\\boxed{1,000,000}", "1000000", true, "1000000"},
      {"commas: a list of digits joins", "\\boxed{1,2,3}", "123", true, "123"},
      {"commas: a decimal keeps them", "\\boxed{1,000.5}", "1000.5", false, "1,000.5"},
      {"commas: a sign keeps them", "\\boxed{-1,000}", "-1000", false, "-1,000"},
      {"commas: a tuple keeps them", "\\boxed{(1,2)}", "(1,2)", true, "(1,2)"},
      {"commas: nothing but a comma", "\\boxed{,}", "", false, ","},
      {"commas: trailing comma", "\\boxed{1,}", "1", true, "1"},
      {"commas: full-width digits", "\\boxed{\uff11,\uff10\uff10\uff10}",
       "\uff11\uff10\uff10\uff10", true, "\uff11\uff10\uff10\uff10"},
      {"commas: superscript digits", "\\boxed{\u00b2,\u00b3}", "\u00b2\u00b3", true,
       "\u00b2\u00b3"},
      {"commas: a full-width comma is not a comma", "\\boxed{1\uff0c000}", "1000", false,
       "1\uff0c000"},
      {"commas: vulgar fraction is not a digit", "\\boxed{1,\u00bd}", "1\u00bd", false, "1,\u00bd"},
      {"commas: Tibetan half digit is not a digit", "\\boxed{1,\u0f33}", "", false, "1,\u0f33"},
      {"commas: Kawi digit is not a digit in Unicode 14", "\\boxed{1,\U00011F50}", "", false,
       "1,\U00011F50"},
      {"commas: circled digits are digits", "\\boxed{\u2460,\u2461}", "\u2460\u2461", true,
       "\u2460\u2461"},
      {"commas: Arabic-Indic digits", "\\boxed{\u0661,\u0662}", "\u0661\u0662", true,
       "\u0661\u0662"},
      {"commas: full-width digits are not ASCII", "\\boxed{\uff14\uff12}", "42", false,
       "\uff14\uff12"},
      // ---- normalisation 7: Unicode whitespace at the ends ----
      {"strip: ideographic space", "\\boxed{\u30005\u3000}", "5", true, "5"},
      {"strip: no-break space", "\\boxed{\u00a05\u00a0}", "5", true, "5"},
      {"strip: NEL",
       "\\boxed{\xc2\x85"
       "5}",
       "5", true, "5"},
      {"strip: file separator",
       "\\boxed{\x1c"
       "5}",
       "5", true, "5"},
      {"strip: tab and newline", "\\boxed{\t5\n}", "5", true, "5"},
      {"strip: zero-width space is not whitespace", "\\boxed{\u200b5}", "5", false, "\u200b5"},
      {"strip: BOM is not whitespace", "\\boxed{\ufeff5}", "5", false, "\ufeff5"},
      {"strip: Mongolian vowel separator is not whitespace", "\\boxed{\u180e5}", "5", false,
       "\u180e5"},
      {"strip: only the ends", "\\boxed{1\u30002}", "12", false, "1\u30002"},
      {"strip: padded ground truth", "\\boxed{5}", "\u3000 5 \u2003\n", true, "5"},
      // ---- newlines inside answers ----
      {"newline kept inside", "\\boxed{1\n2}", "1\n2", true, "1\n2"},
      {"newline: trailing ones stripped", "\\boxed{5\n\n\n}", "5", true, "5"},
      // ---- extraction: the 300-code-point window ----
      {"window: box ends the 300", Repeat(x, 291) + "\\boxed{5}", "5", true, "5"},
      {"window: box starts 300 from the end", Repeat(x, 100) + "\\boxed{5}" + Repeat(x, 291), "5",
       true, "5"},
      {"window: box starts 301 from the end", Repeat(x, 100) + "\\boxed{5}" + Repeat(x, 292), "5",
       false, "[INVALID]"},
      {"window: code points, not bytes",
       Repeat("\u00e9", 100) + "\\boxed{5}" + Repeat("\u00e9", 291), "5", true, "5"},
      {"window: an emoji is one code point",
       Repeat("\U0001F600", 100) + "\\boxed{5}" + Repeat("\U0001F600", 292), "5", false,
       "[INVALID]"},
      {"window: box before it", "\\boxed{1}" + Repeat(x, 300), "[INVALID]", true, "[INVALID]"},
      {"window: the later box", "\\boxed{1}" + Repeat(x, 400) + "\\boxed{2}", "2", true, "2"},
      {"window: opener cut off", "\\boxed{" + Repeat(x, 400) + "}", "[INVALID]", true, "[INVALID]"},
      {"window: inner box survives the cut",
       "\\boxed{" + Repeat(x, 400) + "\\boxed{7}" + Repeat(x, 20) + "}", "7", true, "7"},
      // ---- extraction: braces ----
      {"braces: nested", "\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", true, "\\frac{1}{2}"},
      {"braces: doubled", "\\boxed{{5}}", "5", false, "{5}"},
      {"braces: inner group", "\\boxed{a{b}c}", "a{b}c", true, "a{b}c"},
      {"braces: escaped braces count", "\\boxed{\\{1,2\\}}", "\\{1,2\\}", true, "\\{1,2\\}"},
      {"braces: extra closing brace after", "\\boxed{5}}", "5", true, "5"},
      {"braces: an escaped } closes the box", "\\boxed{\\}}", "\\", true, "\\"},
      {"braces: never balanced", "\\boxed{{}", "[INVALID]", true, "[INVALID]"},
      {"braces: empty then a stray }", "\\boxed{}}", "", true, ""},
      // ---- extraction: unclosed, several, none, empty ----
      {"unclosed box", "so \\boxed{5", "5", false, "[INVALID]"},
      {"unclosed last box hides a closed one", "\\boxed{5} and \\boxed{6", "5", false, "[INVALID]"},
      {"no brace after \\boxed", "\\boxed 5", "5", false, "[INVALID]"},
      {"space before the brace", "\\boxed {5}", "5", false, "[INVALID]"},
      {"several boxes: the last counts", "\\boxed{1} then \\boxed{2}", "2", true, "2"},
      {"several boxes: the first does not", "\\boxed{1} then \\boxed{2}", "1", false, "2"},
      {"box inside a box: the inner one", "\\boxed{1 + \\boxed{2}}", "2", true, "2"},
      {"no box matches [INVALID]", "The answer is 5.", "[INVALID]", true, "[INVALID]"},
      {"no box is wrong otherwise", "The answer is 5.", "5", false, "[INVALID]"},
      {"\\fbox is not a box", "\\fbox{5}", "5", false, "[INVALID]"},
      {"empty response", "", "[INVALID]", true, "[INVALID]"},
      {"empty box, empty ground truth", "\\boxed{}", "", true, ""},
      {"empty box, ground truth 0", "\\boxed{}", "0", false, ""},
      {"box holding [INVALID]", "\\boxed{[INVALID]}", "[INVALID]", true, "[INVALID]"},
      // ---- non-ASCII text ----
      {"Cyrillic before the box", "\u041e\u0442\u0432\u0435\u0442: \\boxed{5}", "5", true, "5"},
      {"CJK before the box", "\u7b54\u6848\u662f \\boxed{5}", "5", true, "5"},
      {"Greek in the box", "\\boxed{\u03c0/2}", "\u03c0/2", true, "\u03c0/2"},
      // ---- the ground truth is normalised the same way ----
      {"ground truth in dollars", "\\boxed{5}", "$5$", true, "5"},
      {"ground truth with degrees", "\\boxed{30}", "30^\\circ", true, "30"},
      {"ground truth with thousands", "\\boxed{1000}", "1,000", true, "1000"},
      {"ground truth in \\text{}", "\\boxed{5}", "\\text{5}", true, "5"},
      {"ground truth an equation", "\\boxed{5}", "y = 5", true, "5"},
  };
}

TEST(MathGraderTableTest, EveryRuleByHand) {
  const std::vector<Case> cases = TableCases();
  EXPECT_GE(cases.size(), 150u);
  for (const Case& c : cases) {
    const Verdict v = GradeMathResponse(c.response, c.ground_truth, GradeMode::kStrict);
    EXPECT_EQ(v.correct, c.correct) << c.rule;
    EXPECT_EQ(v.predicted, c.pred) << c.rule;
    EXPECT_EQ(v.reward, c.correct ? 1.0 : -1.0) << c.rule;
    EXPECT_EQ(v.expected, NormalizeFinalAnswer(c.ground_truth)) << c.rule;
    EXPECT_EQ(v.reason.empty(), c.correct) << c.rule;
  }
}

TEST(MathGraderTableTest, ReasonsNameTheMismatch) {
  EXPECT_EQ(GradeMathResponse("\\boxed{1,000.5}", "1000.5", GradeMode::kStrict).reason,
            "'1,000.5' != '1000.5'");
  EXPECT_EQ(
      GradeMathResponse(Repeat("x", 301) + "\\boxed{5" + "}", "5", GradeMode::kStrict).predicted,
      "5");
  EXPECT_EQ(GradeMathResponse("\\boxed{5", "5", GradeMode::kStrict).reason,
            "no \\boxed{} in the last 300 characters");
}

}  // namespace
}  // namespace deepsearch
