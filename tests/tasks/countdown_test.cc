// Countdown: the exact solver (against the known 24-game count), random-play statistics on
// hand-counted cases, and the verifier's reasons on hand-written responses.
#include "common/tasks/countdown.h"

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/tasks/task.h"

namespace deepsearch {
namespace {

std::unique_ptr<TaskFamily> Make(const std::string& spec) { return *MakeTaskFamily(spec); }

Problem CountdownProblem(const std::string& prompt, const std::string& answer) {
  Problem p;
  p.prompt = prompt;
  p.answer = answer;
  p.task = "countdown";
  p.id = StableProblemId(prompt, answer);
  return p;
}

// Replays `steps` on `numbers` (a multiset) and returns the values left, or {} when a step
// is not a valid move.
std::vector<int64_t> Replay(std::vector<int64_t> numbers, const std::vector<CountdownStep>& steps) {
  for (const CountdownStep& s : steps) {
    for (const int64_t x : {s.a, s.b}) {
      const auto it = std::find(numbers.begin(), numbers.end(), x);
      if (it == numbers.end()) return {};
      numbers.erase(it);
    }
    if (ApplyArithmeticOp(s.a, s.op, s.b) != s.result) return {};
    numbers.push_back(s.result);
  }
  return numbers;
}

// The 24 game: of the 1820 hands of four cards 1..13, 1362 can make 24 with rational
// arithmetic (the known figure); 16 of them need a fraction on the way (1 5 5 5 is
// 5*(5-1/5)), so 1346 can with non-negative integer steps, the countdown rules. Both counts
// were checked with an independent brute force over fractions and over integers.
TEST(CountdownSolverTest, SolvesTheKnownNumberOf24GameHands) {
  int hands = 0, solvable = 0;
  for (int a = 1; a <= 13; ++a) {
    for (int b = a; b <= 13; ++b) {
      for (int c = b; c <= 13; ++c) {
        for (int d = c; d <= 13; ++d) {
          ++hands;
          const std::vector<int64_t> hand = {a, b, c, d};
          const std::optional<std::vector<CountdownStep>> steps = SolveCountdown(hand, 24, true);
          if (!steps) continue;
          ++solvable;
          ASSERT_EQ(steps->size(), 3u);
          ASSERT_EQ(Replay(hand, *steps), std::vector<int64_t>{24});
        }
      }
    }
  }
  EXPECT_EQ(hands, 1820);
  EXPECT_EQ(solvable, 1346);
  EXPECT_EQ(SolveCountdown({1, 5, 5, 5}, 24, true), std::nullopt);
  EXPECT_EQ(SolveCountdown({3, 3, 8, 8}, 24, true), std::nullopt);
}

TEST(CountdownSolverTest, SubsetModeFindsAShortestSolution) {
  // One move makes 15 (5*3 or 8+7); with use_all, all four numbers are needed.
  const std::optional<std::vector<CountdownStep>> short_one =
      SolveCountdown({3, 5, 7, 8}, 15, false);
  ASSERT_TRUE(short_one.has_value());
  EXPECT_EQ(*short_one, (std::vector<CountdownStep>{{5, '*', 3, 15}}));
  // No single move makes 20; two do (9+9=18, 18+2=20).
  const std::optional<std::vector<CountdownStep>> two = SolveCountdown({2, 9, 9, 25}, 20, false);
  ASSERT_TRUE(two.has_value());
  EXPECT_EQ(two->size(), 2u);
  EXPECT_EQ(two->back().result, 20);
  const std::optional<std::vector<CountdownStep>> all = SolveCountdown({3, 5, 7, 8}, 15, true);
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->size(), 3u);
  EXPECT_EQ(Replay({3, 5, 7, 8}, *all), std::vector<int64_t>{15});
  // Unsolvable: 1 and 1 make at most 2; a target among the numbers still needs a move.
  EXPECT_EQ(SolveCountdown({1, 1}, 3, false), std::nullopt);
  EXPECT_EQ(SolveCountdown({1, 1}, 3, true), std::nullopt);
  EXPECT_EQ(SolveCountdown({2, 9}, 9, true), std::nullopt);
  EXPECT_EQ(SolveCountdown({5}, 5, false), std::nullopt);
  // Large values: moves that overflow int64 are skipped, not wrapped.
  const int64_t big = int64_t{1} << 62;
  EXPECT_EQ(SolveCountdown({big, 4}, 0, true), std::nullopt);
  EXPECT_EQ(*SolveCountdown({big, 4}, big / 4, true),
            (std::vector<CountdownStep>{{big, '/', 4, big / 4}}));
}

TEST(CountdownSolverTest, RandomPlayMatchesHandCounts) {
  // {1, 1} -> 2: each ordered pair allows + - * /, and only + hits.
  CountdownPlayStats s = CountdownRandomPlay({1, 1}, 2);
  EXPECT_DOUBLE_EQ(s.valid_sequences, 8);
  EXPECT_DOUBLE_EQ(s.hits, 2);
  EXPECT_DOUBLE_EQ(s.share_of_all_sequences, 0.25);
  EXPECT_DOUBLE_EQ(s.share_of_valid_sequences, 0.25);
  EXPECT_DOUBLE_EQ(s.random_policy_success, 0.25);
  // {2, 3} -> 6: 2+3 2*3 3+2 3-2 3*2 are valid, two of them hit.
  s = CountdownRandomPlay({2, 3}, 6);
  EXPECT_DOUBLE_EQ(s.valid_sequences, 5);
  EXPECT_DOUBLE_EQ(s.share_of_all_sequences, 2.0 / 8);
  EXPECT_DOUBLE_EQ(s.random_policy_success, 2.0 / 5);
  // {1, 1, 1} -> 3: 24 first moves lead to {1,2} (6 moves, 6 continuations, 2 hit), {0,1}
  // (6 moves, 6 continuations, none hit) and {1,1} (12 moves, 8 continuations, none hit).
  s = CountdownRandomPlay({1, 1, 1}, 3);
  EXPECT_DOUBLE_EQ(s.valid_sequences, 6 * 6 + 6 * 6 + 12 * 8);
  EXPECT_DOUBLE_EQ(s.hits, 6 * 2);
  EXPECT_DOUBLE_EQ(s.share_of_valid_sequences, 12.0 / 168);
  EXPECT_DOUBLE_EQ(s.share_of_all_sequences, 12.0 / (3 * 2 * 4 * 2 * 1 * 4));
  EXPECT_DOUBLE_EQ(s.random_policy_success, (6 * (2.0 / 6)) / 24);
}

TEST(CountdownVerifierTest, AcceptsValidSolutions) {
  const std::unique_ptr<TaskFamily> t = Make("countdown");
  const Problem p = CountdownProblem("Use 3 5 7 8 to make 24.\n", "24");
  for (const std::string r : {
           "8-5=3\n7*3=21\n21+3=24\n\\boxed{24}",
           "8-5=3\n3*7=21\n3+21=24\n\\boxed{24}",        // + and * in either order
           "8-5=3\n7*3=21\n21+3=24\n\\boxed{24}\n  \n",  // trailing whitespace
           "7-5=2\n8*3=24\n24/2=12\n\\boxed{24}",        // (wrong: the last value is 12)
       }) {
    const Verdict v = t->Verify(p, r);
    EXPECT_EQ(v.correct, r.find("24/2") == std::string::npos) << r << " -> " << v.reason;
  }
  const Verdict v = t->Verify(p, "8-5=3\n7*3=21\n21+3=24\n\\boxed{24}");
  EXPECT_EQ(v.predicted, "24");
  EXPECT_EQ(v.expected, "24");
  EXPECT_EQ(v.reward, 1.0);
  EXPECT_EQ(*t->Solve(p), "7*3=21\n8-5=3\n21+3=24\n\\boxed{24}");
}

TEST(CountdownVerifierTest, NamesTheFirstInvalidStep) {
  const std::unique_ptr<TaskFamily> t = Make("countdown");
  const Problem p = CountdownProblem("Use 3 5 7 8 to make 24.\n", "24");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"8-5=3\n7*3=21\n21+7=28\n\\boxed{24}", "step 3: 7 is not available"},
      {"8-5=3\n3*3=9\n9+7=24\n\\boxed{24}", "step 3: 9+7 is 16, not 24"},
      {"8/3=2\n7*5=35\n\\boxed{24}", "step 1: 8/3 is not an integer"},
      {"3-8=5\n\\boxed{24}", "step 1: 3-8 is negative"},
      {"8-5=4\n\\boxed{24}", "step 1: 8-5 is 3, not 4"},
      {"5+5=10\n\\boxed{24}", "step 1: 5 is not available"},
      {"8*3=24\n7-5=2\n24-2=22\n\\boxed{24}", "final value 22, target 24"},
      {"8*3=24\n\\boxed{24}", "numbers left unused: 5 7"},
      {"8-5=3\n7*3=21\n21+3=24\n\\boxed{25}", "boxed answer 25, target 24"},
      {"8 - 5 = 3\n\\boxed{24}",
       "step 1: malformed '8 - 5 = 3' (expected a+b=c with one of + - * /)"},
      {"8-5=03\n\\boxed{24}", "step 1: malformed '8-5=03' (expected a+b=c with one of + - * /)"},
      {"8x3=24\n\\boxed{24}", "step 1: malformed '8x3=24' (expected a+b=c with one of + - * /)"},
      {"8-5=3", "no \\boxed{} answer on the last line"},
      {"8-5=3\nso \\boxed{24}", "no \\boxed{} answer on the last line"},
      {"8-5=3\n\\boxed{24", "the \\boxed{ on the last line is not closed"},
      {"8-5=3\n\\boxed{24} done", "text after the \\boxed{} answer"},
      {"8-5=3\n\\boxed{}", "the \\boxed{} answer is empty"},
      {"8-5=3\n\n7*3=21\n\\boxed{24}", "step 2 is empty"},
      {"8\xe2\x88\x92"
       "5=3\n\\boxed{24}",
       "character 0xe2 at offset 1 is not printable ASCII"},
      {"8-5=3\t\n\\boxed{24}", "character 0x09 at offset 5 is not printable ASCII"},
      {"\\boxed{24}", "no steps"},
      {"", "no \\boxed{} answer on the last line"},
  };
  for (const auto& [response, reason] : cases) {
    const Verdict v = t->Verify(p, response);
    EXPECT_FALSE(v.correct) << response;
    EXPECT_EQ(v.reward, -1.0);
    EXPECT_EQ(v.reason, reason) << response;
  }
  // A zero intermediate cannot divide.
  const Problem zero = CountdownProblem("Use 5 5 7 to make 7.\n", "7");
  EXPECT_EQ(t->Verify(zero, "5-5=0\n7/0=7\n\\boxed{7}").reason, "step 2: 7/0 divides by zero");
  EXPECT_TRUE(t->Verify(zero, "5/5=1\n7*1=7\n\\boxed{7}").correct);
  // Overflowing products are refused, not wrapped.
  const Problem big = CountdownProblem("Use 4294967296 4294967296 to make 1.\n", "1");
  EXPECT_EQ(t->Verify(big, "4294967296*4294967296=0\n\\boxed{1}").reason,
            "step 1: 4294967296*4294967296 overflows");
}

TEST(CountdownVerifierTest, SubsetModeAndProblemChecks) {
  const std::unique_ptr<TaskFamily> any = Make("countdown:use_all=false");
  const Problem p = CountdownProblem("Use any of 3 5 7 8 to make 15.\n", "15");
  EXPECT_TRUE(any->Verify(p, "7+8=15\n\\boxed{15}").correct);
  EXPECT_TRUE(any->Verify(p, "3+5=8\n8+7=15\n\\boxed{15}").correct);
  // The target reached on the way but not at the end.
  EXPECT_EQ(any->Verify(p, "7+8=15\n15-5=10\n\\boxed{15}").reason, "final value 10, target 15");
  EXPECT_EQ(*any->Solve(p), "5*3=15\n\\boxed{15}");

  // Each mode reads its own prompt form; the answer must be the prompt's target.
  const std::unique_ptr<TaskFamily> all = Make("countdown");
  EXPECT_EQ(all->Verify(p, "7+8=15\n\\boxed{15}").reason,
            "problem: the prompt is not of the form 'Use 3 5 7 8 to make 24.\\n'");
  EXPECT_EQ(all->Solve(p), std::nullopt);
  const Problem wrong = CountdownProblem("Use 3 5 7 8 to make 24.\n", "25");
  EXPECT_EQ(all->Verify(wrong, "8-5=3\n7*3=21\n21+3=24\n\\boxed{24}").reason,
            "problem: the answer '25' is not the prompt's target 24");
  const Problem seven = CountdownProblem("Use 1 2 3 4 5 6 7 to make 24.\n", "24");
  EXPECT_EQ(all->Verify(seven, "1+2=3\n\\boxed{24}").reason,
            "problem: 7 numbers (2 to 6 are supported)");
  // The number of numbers comes from the prompt, not from the spec's n.
  const Problem five = CountdownProblem("Use 1 2 3 4 5 to make 120.\n", "120");
  const std::optional<std::string> solved = all->Solve(five);
  ASSERT_TRUE(solved.has_value());
  EXPECT_TRUE(all->Verify(five, *solved).correct) << *solved;
  // An unsolvable problem has no worked solution.
  EXPECT_EQ(all->Solve(CountdownProblem("Use 1 1 to make 3.\n", "3")), std::nullopt);
}

TEST(CountdownTaskTest, GeneratedProblemsFollowTheKnobs) {
  const std::unique_ptr<TaskFamily> t = Make("countdown:n=5,max=9,max_target=50");
  Rng rng(3);
  for (int i = 0; i < 500; ++i) {
    const Problem p = t->Generate(rng);
    ASSERT_TRUE(p.prompt.starts_with("Use ")) << p.prompt;
    std::vector<int64_t> numbers;
    std::string_view text(p.prompt);
    text.remove_prefix(4);
    while (!text.starts_with("to make ")) {
      const size_t space = text.find(' ');
      numbers.push_back(std::stoll(std::string(text.substr(0, space))));
      text.remove_prefix(space + 1);
    }
    ASSERT_EQ(numbers.size(), 5u) << p.prompt;
    ASSERT_TRUE(std::is_sorted(numbers.begin(), numbers.end()));
    for (const int64_t x : numbers) ASSERT_TRUE(x >= 1 && x <= 9) << p.prompt;
    const int64_t target = std::stoll(p.answer);
    ASSERT_TRUE(target >= 1 && target <= 50) << p.prompt;
    ASSERT_EQ(
        p.prompt, "Use " +
                      [&] {
                        std::string s;
                        for (const int64_t x : numbers) s += std::to_string(x) + " ";
                        return s;
                      }() +
                      "to make " + p.answer + ".\n");
  }
}

}  // namespace
}  // namespace deepsearch
