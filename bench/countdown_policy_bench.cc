// countdown_policy_bench: how rarely random play solves Countdown, the number that makes it
// the headline task (sampling plateaus where search still finds solutions). A measurement of
// the task, not of the machine: it counts exactly, with no timing.
//
// For each setting it draws instances, and for each one counts every complete sequence of
// moves (countdown.h, CountdownRandomPlay): the share of all (ordered pair, op) sequences that
// end on the target (invalid moves count as misses), the share among sequences of valid moves
// only, and the success probability of a policy that picks uniformly among valid moves. It
// prints the median and the mean over instances.
//
// Two kinds of settings: random instances (numbers and target uniform, kept when the solver
// finds a solution; MODELS_AND_TASKS §2.3 measured those), and the countdown family's own
// generated problems (what training sees).
//
//   build/bench/countdown_policy_bench [--instances N] [--seed S]
#include <algorithm>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/core/rng.h"
#include "common/tasks/countdown.h"
#include "common/tasks/task.h"

namespace deepsearch {
namespace {

struct Summary {
  std::vector<double> all, valid, policy;
  int drawn = 0;  // instances drawn (random settings: before the solvability filter)

  void Add(const CountdownPlayStats& s) {
    all.push_back(s.share_of_all_sequences);
    valid.push_back(s.share_of_valid_sequences);
    policy.push_back(s.random_policy_success);
  }
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double Mean(const std::vector<double>& v) {
  double sum = 0;
  for (const double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}

void Print(const std::string& setting, const Summary& s) {
  std::printf("%-48s %6zu %8.1f%%  %7.3f%% %7.3f%%  %7.3f%% %7.3f%%  %7.3f%% %7.3f%%\n",
              setting.c_str(), s.all.size(), 100.0 * s.all.size() / s.drawn, 100 * Median(s.all),
              100 * Mean(s.all), 100 * Median(s.valid), 100 * Mean(s.valid), 100 * Median(s.policy),
              100 * Mean(s.policy));
}

// Uniform numbers in [1, max] and a target in [1, max_target], kept when solvable.
Summary RandomInstances(int n, int64_t max, int64_t max_target, int instances, Rng& rng) {
  Summary s;
  while (static_cast<int>(s.all.size()) < instances) {
    ++s.drawn;
    std::vector<int64_t> numbers(n);
    for (int64_t& x : numbers) x = rng.UniformInt(1, max);
    const int64_t target = rng.UniformInt(1, max_target);
    if (!SolveCountdown(numbers, target, /*use_all=*/true)) continue;
    s.Add(CountdownRandomPlay(numbers, target));
  }
  return s;
}

// The family's generated problems, numbers and target read back from the prompt.
Summary Generated(const std::string& spec, int instances, Rng& rng) {
  const std::unique_ptr<TaskFamily> family = *MakeTaskFamily(spec);
  Summary s;
  for (int i = 0; i < instances; ++i) {
    const Problem p = family->Generate(rng);
    std::vector<int64_t> numbers;
    size_t at = 4;  // after "Use "
    while (p.prompt.compare(at, 3, "to ") != 0) {
      const size_t space = p.prompt.find(' ', at);
      numbers.push_back(std::stoll(p.prompt.substr(at, space - at)));
      at = space + 1;
    }
    ++s.drawn;
    s.Add(CountdownRandomPlay(numbers, std::stoll(p.answer)));
  }
  return s;
}

int Main(int argc, char** argv) {
  CLI::App app{"Random-play success rates of Countdown instances (exact counts)"};
  int instances = 1000;
  uint64_t seed = 1;
  app.add_option("--instances", instances, "Instances per setting")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--seed", seed, "Seed")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  Rng rng(seed);
  std::printf("%-48s %6s %9s  %-15s  %-15s  %-15s\n", "setting", "inst", "solvable",
              "all seq med/mean", "valid seq", "uniform policy");
  Print("random n=3 in [1,9], target <= 100", RandomInstances(3, 9, 100, instances, rng));
  Print("random n=4 in [1,9], target <= 100", RandomInstances(4, 9, 100, instances, rng));
  Print("random n=4 in [1,99], target <= 200", RandomInstances(4, 99, 200, instances, rng));
  Print("random n=5 in [1,25], target <= 500", RandomInstances(5, 25, 500, instances, rng));
  Print("countdown (n=4, max=25, max_target=100)", Generated("countdown", instances, rng));
  Print("countdown:n=5 (max=25, max_target=100)", Generated("countdown:n=5", instances, rng));
  Print("countdown:n=5,max_target=500", Generated("countdown:n=5,max_target=500", instances, rng));
  return 0;
}

}  // namespace
}  // namespace deepsearch

int main(int argc, char** argv) {
  try {
    return deepsearch::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "countdown_policy_bench: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "countdown_policy_bench: unexpected error\n");
  }
  return 1;
}
