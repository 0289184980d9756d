// The "countdown" task family (the headline task): combine given numbers with + - * / to
// make a target.
//
// Spec: countdown:max=25,max_target=100,n=4,use_all=true
//   n           how many numbers, 2..6 (default 4)
//   max         each number is drawn uniformly from [1, max], max in 1..1000 (default 25)
//   max_target  the target lies in [1, max_target], 1..1000000 (default 100)
//   use_all     true: every number is used exactly once; false: any of them, each at most
//               once (default true)
//
// Prompt (numbers ascending): "Use 3 5 7 8 to make 24.\n", or without use_all
// "Use any of 3 5 7 8 to make 24.\n". Answer: the target.
// Response: one operation per line, "a+b=c" (ops + - * /, no spaces), then \boxed{target}:
//   8-5=3
//   7*3=21
//   21+3=24
//   \boxed{24}
//
// Generation is by construction, so every problem is solvable: n numbers drawn from [1, max]
// (without use_all, a random subset of at least two of them), combined by random moves (a
// random pair, a random allowed op: intermediates stay non-negative integers and divisions
// exact) until one value is left; that value is the target when it lies in [1, max_target],
// otherwise the moves are drawn again (64 times, then new numbers).
//
// The verifier reads the numbers and target from the prompt (2 to 6 numbers) and replays the
// steps on the multiset of available numbers: each operand must be available (results become
// available), each step must be allowed (arithmetic_step.h) with the right result, the last
// result must be the target and, with use_all, no number may be left. The boxed answer must
// be the target. The first failure is the reason: "step 2: 7 is not available", "step 1: 8/3
// is not an integer", "final value 23, target 24", "numbers left unused: 5".
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "common/tasks/countdown.h"
#include "common/tasks/families.h"
#include "common/tasks/response_format.h"

namespace deepsearch {
namespace {

constexpr int kMaxNumbers = 6;

struct Instance {
  std::vector<int64_t> numbers;  // ascending
  int64_t target = 0;
};

class CountdownTask final : public TaskFamily {
 public:
  CountdownTask(int n, int64_t max, int64_t max_target, bool use_all)
      : n_(n), max_(max), max_target_(max_target), use_all_(use_all) {}

  std::string name() const override { return "countdown"; }
  std::string spec() const override {
    return absl::StrCat("countdown:max=", max_, ",max_target=", max_target_, ",n=", n_,
                        ",use_all=", use_all_ ? "true" : "false");
  }

  // Every knob setting has numbers whose random play lands in range, so the loop ends; the
  // most extreme (n=6, max=1000, max_target=1) takes about 20 ms a problem.
  Problem Generate(Rng& rng) const override {
    while (true) {
      std::vector<int64_t> numbers(n_);
      for (int64_t& x : numbers) x = rng.UniformInt(1, max_);
      for (int attempt = 0; attempt < 64; ++attempt) {
        const std::optional<int64_t> target = RandomPlay(numbers, rng);
        if (target && *target >= 1 && *target <= max_target_) {
          std::sort(numbers.begin(), numbers.end());
          Problem p;
          p.prompt = Prompt({numbers, *target});
          p.answer = absl::StrCat(*target);
          p.task = spec();
          p.id = StableProblemId(p.prompt, p.answer);
          return p;
        }
      }
    }
  }

  std::optional<std::string> Solve(const Problem& problem) const override {
    const absl::StatusOr<Instance> instance = ParseProblem(problem);
    if (!instance.ok()) return std::nullopt;
    const std::optional<std::vector<CountdownStep>> steps =
        SolveCountdown(instance->numbers, instance->target, use_all_);
    if (!steps) return std::nullopt;
    std::vector<std::string> lines;
    for (const CountdownStep& step : *steps) lines.push_back(FormatArithmeticStep(step));
    return RenderStepResponse(lines, problem.answer);
  }

  Verdict Verify(const Problem& problem, std::string_view response) const override {
    const absl::StatusOr<Instance> instance = ParseProblem(problem);
    if (!instance.ok()) {
      return RejectResponse(problem, response, std::string(instance.status().message()));
    }
    const absl::StatusOr<StepResponse> parsed = ParseStepResponse(response);
    if (!parsed.ok()) {
      return RejectResponse(problem, response, std::string(parsed.status().message()));
    }
    const std::string predicted(parsed->answer);
    auto fail = [&](std::string reason) {
      return Verdict::Incorrect(predicted, problem.answer, std::move(reason));
    };
    if (parsed->steps.empty()) return fail("no steps");
    std::vector<int64_t> available = instance->numbers;
    auto take = [&available](int64_t x) {
      const auto it = std::find(available.begin(), available.end(), x);
      if (it == available.end()) return false;
      available.erase(it);
      return true;
    };
    int64_t last = 0;
    for (size_t i = 0; i < parsed->steps.size(); ++i) {
      const std::string where = absl::StrCat("step ", i + 1, ": ");
      const std::string_view text = parsed->steps[i];
      const std::optional<CountdownStep> step = ParseArithmeticStep(text);
      if (!step) {
        return fail(absl::StrCat(where, "malformed '", std::string(text),
                                 "' (expected a+b=c with one of + - * /)"));
      }
      if (!take(step->a)) return fail(absl::StrCat(where, step->a, " is not available"));
      if (!take(step->b)) return fail(absl::StrCat(where, step->b, " is not available"));
      const std::optional<int64_t> result = ApplyArithmeticOp(step->a, step->op, step->b);
      if (!result) return fail(where + DisallowedReason(step->a, step->op, step->b));
      if (*result != step->result) {
        return fail(absl::StrCat(where, FormatOperation(step->a, step->op, step->b), " is ",
                                 *result, ", not ", step->result));
      }
      available.push_back(*result);
      last = *result;
    }
    if (last != instance->target) {
      return fail(absl::StrCat("final value ", last, ", target ", instance->target));
    }
    if (use_all_) {
      // The last result is still available; everything else is left over.
      take(last);
      if (!available.empty()) {
        std::sort(available.begin(), available.end());
        return fail(absl::StrCat("numbers left unused: ", absl::StrJoin(available, " ")));
      }
    }
    if (predicted != problem.answer) {
      return fail(absl::StrCat("boxed answer ", predicted, ", target ", problem.answer));
    }
    return Verdict::Correct(predicted, problem.answer);
  }

 private:
  std::string Prompt(const Instance& instance) const {
    return absl::StrCat("Use ", use_all_ ? "" : "any of ", absl::StrJoin(instance.numbers, " "),
                        " to make ", instance.target, ".\n");
  }

  // The numbers and target of a problem in this family's prompt format.
  absl::StatusOr<Instance> ParseProblem(const Problem& problem) const {
    const std::string expected_form =
        absl::StrCat("'Use ", use_all_ ? "" : "any of ", "3 5 7 8 to make 24.\\n'");
    auto malformed = [&] {
      return absl::InvalidArgumentError(
          absl::StrCat("problem: the prompt is not of the form ", expected_form));
    };
    std::string_view text = problem.prompt;
    if (!ConsumePrefix(text, use_all_ ? "Use " : "Use any of ")) return malformed();
    Instance instance;
    while (true) {
      const std::optional<int64_t> x = ConsumeNumber(text);
      if (!x) return malformed();
      instance.numbers.push_back(*x);
      if (ConsumePrefix(text, " to make ")) break;
      if (!ConsumePrefix(text, " ")) return malformed();
    }
    const std::optional<int64_t> target = ConsumeNumber(text);
    if (!target || text != ".\n") return malformed();
    instance.target = *target;
    if (instance.numbers.size() < 2 || instance.numbers.size() > kMaxNumbers) {
      return absl::InvalidArgumentError(absl::StrCat(
          "problem: ", instance.numbers.size(), " numbers (2 to ", kMaxNumbers, " are supported)"));
    }
    if (problem.answer != absl::StrCat(instance.target)) {
      return absl::InvalidArgumentError(absl::StrCat("problem: the answer '", problem.answer,
                                                     "' is not the prompt's target ",
                                                     instance.target));
    }
    std::sort(instance.numbers.begin(), instance.numbers.end());
    return instance;
  }

  // Combines numbers by random allowed moves (a random subset of at least two without
  // use_all) and returns the last value; nullopt if a state had no allowed move.
  std::optional<int64_t> RandomPlay(const std::vector<int64_t>& numbers, Rng& rng) const {
    std::vector<int64_t> pool = numbers;
    if (!use_all_) {
      for (size_t i = pool.size() - 1; i > 0; --i) {
        std::swap(pool[i], pool[rng.UniformInt(0, static_cast<int64_t>(i))]);
      }
      pool.resize(rng.UniformInt(2, static_cast<int64_t>(pool.size())));
    }
    while (pool.size() > 1) {
      const int64_t last = static_cast<int64_t>(pool.size()) - 1;
      const size_t i = rng.UniformInt(0, last);
      size_t j = rng.UniformInt(0, last - 1);
      if (j >= i) ++j;
      std::vector<int64_t> results;
      for (const char op : kArithmeticOps) {
        if (const std::optional<int64_t> r = ApplyArithmeticOp(pool[i], op, pool[j])) {
          results.push_back(*r);
        }
      }
      if (results.empty()) return std::nullopt;
      const int64_t r = results[rng.UniformInt(0, static_cast<int64_t>(results.size()) - 1)];
      pool.erase(pool.begin() + std::max(i, j));
      pool.erase(pool.begin() + std::min(i, j));
      pool.push_back(r);
    }
    return pool[0];
  }

  const int n_;
  const int64_t max_;
  const int64_t max_target_;
  const bool use_all_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<TaskFamily>> MakeCountdownTask(TaskOptions& options) {
  const absl::StatusOr<int64_t> n = options.Int("n", 4, 2, kMaxNumbers);
  if (!n.ok()) return n.status();
  const absl::StatusOr<int64_t> max = options.Int("max", 25, 1, 1000);
  if (!max.ok()) return max.status();
  const absl::StatusOr<int64_t> max_target = options.Int("max_target", 100, 1, 1000000);
  if (!max_target.ok()) return max_target.status();
  const absl::StatusOr<bool> use_all = options.Bool("use_all", true);
  if (!use_all.ok()) return use_all.status();
  return std::unique_ptr<TaskFamily>(
      new CountdownTask(static_cast<int>(*n), *max, *max_target, *use_all));
}

}  // namespace deepsearch
