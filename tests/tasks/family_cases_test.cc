// Hand-written cases for the shared response format and the addition, modular, word and path
// families: worked solutions verbatim, and each verifier's reasons for wrong responses.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/tasks/response_format.h"
#include "common/tasks/task.h"
#include "common/tasks/word_problems.h"

namespace deepsearch {
namespace {

using Cases = std::vector<std::pair<std::string, std::string>>;  // response, reason

std::unique_ptr<TaskFamily> Make(const std::string& spec) { return *MakeTaskFamily(spec); }

Problem MakeProblem(const std::string& prompt, const std::string& answer) {
  Problem p;
  p.prompt = prompt;
  p.answer = answer;
  p.id = StableProblemId(prompt, answer);
  return p;
}

void ExpectReasons(const TaskFamily& t, const Problem& p, const Cases& cases) {
  for (const auto& [response, reason] : cases) {
    const Verdict v = t.Verify(p, response);
    EXPECT_FALSE(v.correct) << response;
    EXPECT_EQ(v.reward, -1.0);
    EXPECT_EQ(v.reason, reason) << response;
  }
}

TEST(ResponseFormatTest, SplitsStepsAndTheBoxedAnswer) {
  absl::StatusOr<StepResponse> r = ParseStepResponse("a\nb c\n\\boxed{x{y}z}\n \n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->steps, (std::vector<std::string_view>{"a", "b c"}));
  EXPECT_EQ(r->answer, "x{y}z");
  r = ParseStepResponse("\\boxed{7}");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->steps.empty());
  EXPECT_EQ(r->answer, "7");
  EXPECT_EQ(ParseStepResponse("a\n\\boxed{7}}").status().message(),
            "text after the \\boxed{} answer");
  EXPECT_EQ(ParseStepResponse("a\n \\boxed{7}").status().message(),
            "no \\boxed{} answer on the last line");
  EXPECT_EQ(ParseStepResponse("\n\\boxed{7}").status().message(), "step 1 is empty");
  EXPECT_EQ(RenderStepResponse({"1+1=2", "2*3=6"}, "6"), "1+1=2\n2*3=6\n\\boxed{6}");
  EXPECT_EQ(BoxedTextOrEmpty("x \\boxed{1} y \\boxed{2{3}} z"), "2{3}");
  EXPECT_EQ(BoxedTextOrEmpty("\\boxed{open"), "");
  EXPECT_EQ(BoxedTextOrEmpty("none"), "");
}

TEST(ResponseFormatTest, NumbersAreStrictDecimals) {
  EXPECT_EQ(ParseNumber("0"), 0);
  EXPECT_EQ(ParseNumber("907"), 907);
  EXPECT_EQ(ParseNumber("999999999999999999"), 999999999999999999);
  EXPECT_EQ(ParseNumber("1000000000000000000"), std::nullopt);  // 19 digits
  EXPECT_EQ(ParseNumber("07"), std::nullopt);
  EXPECT_EQ(ParseNumber("-7"), std::nullopt);
  EXPECT_EQ(ParseNumber("+7"), std::nullopt);
  EXPECT_EQ(ParseNumber(" 7"), std::nullopt);
  EXPECT_EQ(ParseNumber("7 "), std::nullopt);
  EXPECT_EQ(ParseNumber(""), std::nullopt);
  std::string_view text = "12+3";
  EXPECT_EQ(ConsumeNumber(text), 12);
  EXPECT_EQ(text, "+3");
  EXPECT_EQ(ConsumeNumber(text), std::nullopt);
  EXPECT_EQ(text, "+3");
  EXPECT_EQ(CheckedMul(int64_t{1} << 62, 2), std::nullopt);
  EXPECT_EQ(CheckedAdd(int64_t{1} << 62, int64_t{1} << 62), std::nullopt);
  EXPECT_EQ(CheckedMul(3, 4), 12);
}

TEST(AdditionTest, WorkedSolutionsAndReasons) {
  const std::unique_ptr<TaskFamily> t = Make("addition");
  const Problem p = MakeProblem("Add 357+628, digits reversed.\n", "589");
  const std::string good =
      "7+8+0=15 write 5 carry 1\n5+2+1=8 write 8 carry 0\n3+6+0=9 write 9 carry 0\n\\boxed{589}";
  EXPECT_EQ(*t->Solve(p), good);
  EXPECT_TRUE(t->Verify(p, good).correct);
  // A carry out of the last column adds a step; zeros at the end of the sum stay.
  EXPECT_EQ(*t->Solve(MakeProblem("Add 95+87, digits reversed.\n", "281")),
            "5+7+0=12 write 2 carry 1\n9+8+1=18 write 8 carry 1\n0+0+1=1 write 1 carry 0\n"
            "\\boxed{281}");
  EXPECT_EQ(*t->Solve(MakeProblem("Add 60+60, digits reversed.\n", "021")),
            "0+0+0=0 write 0 carry 0\n6+6+0=12 write 2 carry 1\n0+0+1=1 write 1 carry 0\n"
            "\\boxed{021}");
  EXPECT_EQ(*t->Solve(MakeProblem("Add 9+99+5, digits reversed.\n", "311")),
            "9+9+5+0=23 write 3 carry 2\n0+9+0+2=11 write 1 carry 1\n0+0+0+1=1 write 1 carry 0\n"
            "\\boxed{311}");
  ExpectReasons(*t, p,
                {
                    {"7+8+0=15 write 5 carry 1\n5+2+0=7 write 7 carry 0\n3+6+0=9 write 9 carry 0\n"
                     "\\boxed{579}",
                     "step 2: the column is 5+2 with carry 1, not 5+2+0"},
                    {"8+7+0=15 write 5 carry 1\n\\boxed{5}",
                     "step 1: the column is 7+8 with carry 0, not 8+7+0"},
                    {"7+8+0=16 write 6 carry 1\n\\boxed{6}", "step 1: 7+8+0 is 15, not 16"},
                    {"7+8+0=15 write 1 carry 5\n\\boxed{1}",
                     "step 1: 15 writes 5 and carries 1, not 1 and 5"},
                    {good.substr(0, good.rfind('\n')) + "\n0+0+0=0 write 0 carry 0\n\\boxed{5890}",
                     "step 4: extra step (the sum has 3 digits)"},
                    {"7+8+0=15 write 5 carry 1\n5+2+1=8 write 8 carry 0\n\\boxed{58}",
                     "only 2 steps; the sum has 3 digits"},
                    {"7+8+0=15 write 5 carry 1\n5+2+1=8 write 8 carry 0\n3+6+0=9 write 9 carry 0\n"
                     "\\boxed{985}",
                     "boxed answer 985, but the steps wrote 589"},
                    {"7+8=15\n\\boxed{5}",
                     "step 1: malformed '7+8=15' (expected digits+carry=sum write d carry c)"},
                    {"\\boxed{589}", "only 0 steps; the sum has 3 digits"},
                });
  EXPECT_EQ(t->Verify(MakeProblem("Add 357+628, digits reversed.\n", "985"), good).reason,
            "problem: the answer '985' is not the reversed sum 589");
  EXPECT_EQ(t->Verify(MakeProblem("Add 357 + 628\n", "589"), good).reason,
            "problem: the prompt is not of the form 'Add 357+628, digits reversed.\\n'");
  EXPECT_EQ(t->Verify(MakeProblem("Add 1+2+3+4+5, digits reversed.\n", "51"), good).reason,
            "problem: 5 operands (2 to 4 are supported)");
}

TEST(ModularTest, WorkedSolutionsAndReasons) {
  const std::unique_ptr<TaskFamily> t = Make("modular");
  const Problem p = MakeProblem("Mod 17, start at 5: *3 +9 -11\n", "13");
  const std::string good = "5*3 mod 17=15\n15+9 mod 17=7\n7-11 mod 17=13\n\\boxed{13}";
  EXPECT_EQ(*t->Solve(p), good);
  EXPECT_TRUE(t->Verify(p, good).correct);
  ExpectReasons(
      *t, p,
      {
          {"5*3 mod 17=15\n14+9 mod 17=6\n\\boxed{6}",
           "step 2: starts from 14, but the value is 15"},
          {"5*3 mod 17=15\n15+8 mod 17=6\n\\boxed{6}", "step 2: the operation is +9, not +8"},
          {"5*3 mod 17=15\n15*9 mod 17=16\n\\boxed{16}", "step 2: the operation is +9, not *9"},
          {"5*3 mod 17=15\n15+9 mod 13=11\n\\boxed{11}", "step 2: the modulus is 17, not 13"},
          {"5*3 mod 17=15\n15+9 mod 17=7\n7-11 mod 17=4\n\\boxed{4}",
           "step 3: 7-11 mod 17 is 13, not 4"},
          {good.substr(0, good.rfind('\n')) + "\n13+1 mod 17=14\n\\boxed{14}",
           "step 4: extra step (the chain has 3 operations)"},
          {"5*3 mod 17=15\n15+9 mod 17=7\n\\boxed{7}", "only 2 steps for 3 operations"},
          {"5*3 mod 17=15\n15+9 mod 17=7\n7-11 mod 17=13\n\\boxed{12}",
           "boxed answer 12, final value 13"},
          {"5*3=15\n\\boxed{15}",
           "step 1: malformed '5*3=15' (expected x*k mod m=r with one of + - *)"},
      });
  EXPECT_EQ(t->Verify(MakeProblem("Mod 17, start at 5: *20\n", "15"), good).reason,
            "problem: operand 20 is not below the modulus");
  EXPECT_EQ(t->Verify(MakeProblem("Mod 17, start at 5: *3\n", "16"), good).reason,
            "problem: the answer '16' is not the chain's value 15");
  EXPECT_EQ(t->Verify(MakeProblem("Mod 1000, start at 5: *3\n", "15"), good).reason,
            "problem: unsupported chain (modulus 2..997, start below the modulus, 1..32 "
            "operations)");
}

TEST(WordTest, WorkedSolutionsAndReasons) {
  const std::unique_ptr<TaskFamily> t = Make("word");
  const Problem p = MakeProblem(
      "A shop has 24 apples. It buys 3 crates of 12 apples. How many apples does the shop have "
      "now?\n",
      "60");
  const std::string good = "3*12=36\n24+36=60\n\\boxed{60}";
  EXPECT_EQ(*t->Solve(p), good);
  EXPECT_TRUE(t->Verify(p, good).correct);
  // Any order of true statements from the problem's numbers; the answer as the math grader
  // reads it.
  EXPECT_TRUE(t->Verify(p, "12*3=36\n36+24=60\n\\boxed{60}").correct);
  EXPECT_TRUE(t->Verify(p, "3*12=36\n24+36=60\n\\boxed{\\text{60}}").correct);
  ExpectReasons(
      *t, p,
      {
          {"3*12=37\n24+37=61\n\\boxed{61}", "step 1: 3*12 is 36, not 37"},
          {"24+36=60\n\\boxed{60}", "step 1: 36 is neither in the problem nor an earlier result"},
          {"3*12=36\n24+36=60\n\\boxed{61}", "'61' != '60'"},
          {"3*12=36\n\\boxed{60}", "the last step gives 36, not the answer 60"},
          {"3*12=36\n36/24=1\n\\boxed{1}", "step 2: 36/24 is not an integer"},
          {"3-12=0\n\\boxed{60}", "step 1: 3-12 is negative"},
          {"3 x 12 = 36\n\\boxed{36}",
           "step 1: malformed '3 x 12 = 36' (expected a+b=c with one of + - * /)"},
          {"The shop has 24+36 apples.\n\\boxed{60}",
           "step 1: malformed 'The shop has 24+36 apples.' (expected a+b=c with one of "
           "+ - * /)"},
          {"\\boxed{60}", "no steps"},
          {"3*12=36\n24+36=60\nSo 60.", "no \\boxed{} answer on the last line"},
      });
  // Solve needs a prompt the generator wrote, with its answer.
  EXPECT_EQ(t->Solve(MakeProblem("What is 2+2?\n", "4")), std::nullopt);
  EXPECT_EQ(t->Solve(MakeProblem(p.prompt, "61")), std::nullopt);
}

TEST(WordTest, EveryScenarioMakesEveryLengthAndReadsBack) {
  ASSERT_GE(WordScenarioCount(), 12);
  Rng rng(11);
  for (int scenario = 0; scenario < WordScenarioCount(); ++scenario) {
    for (int ops = 1; ops <= 8; ++ops) {
      for (const int64_t max : {2, 50, 1000}) {
        for (int i = 0; i < 10; ++i) {
          const WordProblem w = GenerateWordProblem(scenario, ops, max, rng);
          ASSERT_EQ(w.scenario, WordScenarioName(scenario));
          ASSERT_EQ(static_cast<int>(w.steps.size()), ops) << w.prompt;
          for (const ArithmeticStep& s : w.steps) {
            ASSERT_EQ(ApplyArithmeticOp(s.a, s.op, s.b), s.result) << w.prompt;
            ASSERT_LE(s.result, 20 * max) << w.prompt;
          }
          ASSERT_EQ(w.steps.back().result, w.answer);
          const std::optional<WordProblem> back = SolveWordPrompt(w.prompt);
          ASSERT_TRUE(back.has_value()) << w.prompt;
          ASSERT_EQ(back->scenario, w.scenario);
          ASSERT_EQ(back->steps, w.steps) << w.prompt;
          ASSERT_EQ(back->answer, w.answer);
        }
      }
    }
  }
}

TEST(PathTest, WorkedSolutionsAndReasons) {
  const std::unique_ptr<TaskFamily> t = Make("path");
  const Problem p =
      MakeProblem("Edges: A-B 3, A-C 5, B-C 1, B-D 6, C-D 2. Shortest path from A to D?\n", "6");
  const std::string good = "A-B 3 total 3\nB-C 1 total 4\nC-D 2 total 6\n\\boxed{6}";
  EXPECT_EQ(*t->Solve(p), good);
  EXPECT_TRUE(t->Verify(p, good).correct);
  ExpectReasons(
      *t, p,
      {
          {"A-C 5 total 5\nC-D 2 total 7\n\\boxed{7}", "length 7 is not the shortest (6)"},
          {"A-B 3 total 3\nC-D 2 total 5\n\\boxed{5}", "step 2: starts at C, but the path is at B"},
          {"A-D 1 total 1\n\\boxed{1}", "step 1: there is no edge A-D"},
          {"A-E 1 total 1\n\\boxed{1}", "step 1: there is no edge A-E"},
          {"A-A 1 total 1\n\\boxed{1}", "step 1: there is no edge A-A"},
          {"A-B 4 total 4\n\\boxed{4}", "step 1: edge A-B weighs 3, not 4"},
          {"A-B 3 total 3\nB-A 3 total 6\n\\boxed{6}", "step 2: A is visited twice"},
          {"A-B 3 total 3\nB-C 1 total 5\n\\boxed{5}", "step 2: the total is 4, not 5"},
          {"A-B 3 total 3\nB-C 1 total 4\n\\boxed{4}", "the path ends at C, not D"},
          {"A-B 3 total 3\nB-C 1 total 4\nC-D 2 total 6\n\\boxed{7}",
           "boxed answer 7, path length 6"},
          {"A->B 3\n\\boxed{3}", "step 1: malformed 'A->B 3' (expected X-Y weight total length)"},
          {"ABCD\n\\boxed{6}", "step 1: malformed 'ABCD' (expected X-Y weight total length)"},
          {"\\boxed{6}", "no steps"},
      });
  // Without `optimal`, any simple path from s to t is right.
  const std::unique_ptr<TaskFamily> any = Make("path:optimal=false");
  const Problem q =
      MakeProblem("Edges: A-B 3, A-C 5, B-C 1, B-D 6, C-D 2. Path from A to D?\n", "6");
  EXPECT_TRUE(any->Verify(q, "A-C 5 total 5\nC-D 2 total 7\n\\boxed{7}").correct);
  EXPECT_TRUE(any->Verify(q, "A-B 3 total 3\nB-D 6 total 9\n\\boxed{9}").correct);
  EXPECT_TRUE(any->Verify(q, "A-C 5 total 5\nC-B 1 total 6\nB-D 6 total 12\n\\boxed{12}").correct);
  EXPECT_EQ(any->Verify(q, "A-C 5 total 5\nC-D 2 total 7\n\\boxed{6}").reason,
            "boxed answer 6, path length 7");
  // Problem checks.
  EXPECT_EQ(t->Verify(q, good).reason,
            "problem: the prompt is not of the form 'Edges: A-B 3, B-C 5. Shortest path from A to "
            "C?\\n'");
  EXPECT_EQ(
      t->Verify(MakeProblem("Edges: A-B 3, B-A 1. Shortest path from A to B?\n", "1"), good).reason,
      "problem: edge B-A is listed twice");
  EXPECT_EQ(
      t->Verify(MakeProblem("Edges: A-B 1, C-D 1. Shortest path from A to D?\n", "2"), good).reason,
      "problem: D cannot be reached from A");
  EXPECT_EQ(
      t->Verify(MakeProblem("Edges: A-B 3, A-C 5, B-C 1, B-D 6, C-D 2. Shortest path from A to "
                            "D?\n",
                            "7"),
                good)
          .reason,
      "problem: the answer '7' is not the shortest length 6");
}

TEST(PathTest, GeneratedGraphsAreConnectedWithTheAskedDegree) {
  const std::unique_ptr<TaskFamily> t = Make("path:nodes=10,degree=4,max_weight=5");
  Rng rng(2);
  for (int i = 0; i < 200; ++i) {
    const Problem p = t->Generate(rng);
    // 10 nodes, average degree 4: 20 edges, listed in order with weights in [1, 5].
    int edges = 0;
    std::string previous;
    for (size_t at = p.prompt.find('-'); at != std::string::npos && at < p.prompt.find('.');
         at = p.prompt.find('-', at + 1)) {
      ++edges;
      const std::string edge = p.prompt.substr(at - 1, 3);
      EXPECT_LT(edge[0], edge[2]);
      EXPECT_LT(previous, edge);
      previous = edge;
      const int weight = p.prompt[at + 3] - '0';
      EXPECT_TRUE(weight >= 1 && weight <= 5) << p.prompt;
    }
    EXPECT_EQ(edges, 20) << p.prompt;
    // Reachable (the graph is connected) and more than one hop away.
    const std::string solution = *t->Solve(p);
    EXPECT_GE(std::count(solution.begin(), solution.end(), '\n'), 2) << p.prompt << solution;
  }
}

}  // namespace
}  // namespace deepsearch
