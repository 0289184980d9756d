// Countdown's exact solver and random-play statistics (countdown.h).
#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"

#include "common/tasks/countdown.h"

namespace deepsearch {
namespace {

using State = std::vector<int64_t>;  // sorted ascending

// `state` without positions i and j, with `value` inserted in order.
State Replace(const State& state, size_t i, size_t j, int64_t value) {
  State next;
  next.reserve(state.size() - 1);
  for (size_t k = 0; k < state.size(); ++k) {
    if (k != i && k != j) next.push_back(state[k]);
  }
  next.insert(std::upper_bound(next.begin(), next.end(), value), value);
  return next;
}

// Depth-first search over states. Moves are tried on distinct value pairs only, the larger
// value first (the smaller-first orders give nothing new: a-b and a/b need a >= b, or equal
// values, where both orders agree).
class Solver {
 public:
  Solver(int64_t target, bool use_all) : target_(target), use_all_(use_all) {}

  // Finds a solution of at most `depth` moves (use_all: exactly size-1 moves) from `state`,
  // which has at least two numbers. The last two moves are tried without building the states
  // they lead to, and only larger states are memoised: the leaves dominate the count.
  bool Search(const State& state, int depth) {
    if (use_all_ && state.size() == 2) return FinalMove(state[1], state[0]);
    const bool memoise = use_all_ ? state.size() > 3 : depth > 1;
    std::pair<State, int> key;
    if (memoise) {
      key = {state, depth};
      if (dead_.contains(key)) return false;
    }
    for (size_t i = 0; i < state.size(); ++i) {
      if (i > 0 && state[i] == state[i - 1]) continue;
      for (size_t j = i + 1; j < state.size(); ++j) {
        if (j > i + 1 && state[j] == state[j - 1]) continue;
        const int64_t big = state[j], small = state[i];
        for (const char op : kArithmeticOps) {
          const std::optional<int64_t> r = ApplyArithmeticOp(big, op, small);
          if (!r) continue;
          path_.push_back({big, op, small, *r});
          bool found = false;
          if (use_all_ && state.size() == 3) {
            const int64_t other = state[3 - i - j];
            found = FinalMove(std::max(*r, other), std::min(*r, other));
          } else if (!use_all_ && *r == target_) {
            found = true;
          } else if (use_all_ || (depth > 1 && state.size() > 2)) {
            // (Without use_all, a spent budget or a last number ends the line.)
            found = Search(Replace(state, i, j, *r), depth - 1);
          }
          if (found) return true;
          path_.pop_back();
        }
      }
    }
    if (memoise) dead_.insert(std::move(key));
    return false;
  }

  // Whether one move on big >= small makes the target (with use_all, the last one).
  bool FinalMove(int64_t big, int64_t small) {
    for (const char op : kArithmeticOps) {
      const std::optional<int64_t> r = ApplyArithmeticOp(big, op, small);
      if (r == target_) {
        path_.push_back({big, op, small, *r});
        return true;
      }
    }
    return false;
  }

  std::vector<CountdownStep>& path() { return path_; }

 private:
  const int64_t target_;
  const bool use_all_;
  std::vector<CountdownStep> path_;
  absl::flat_hash_set<std::pair<State, int>> dead_;
};

struct PlayCounts {
  double valid = 0;
  double hits = 0;
  double policy = 0;
};

PlayCounts CountPlay(const State& state, int64_t target,
                     absl::flat_hash_map<State, PlayCounts>& memo) {
  if (state.size() == 1) {
    const double hit = state[0] == target ? 1.0 : 0.0;
    return {1.0, hit, hit};
  }
  if (const auto it = memo.find(state); it != memo.end()) return it->second;
  PlayCounts total;
  double policy_sum = 0;
  int moves = 0;
  for (size_t i = 0; i < state.size(); ++i) {
    for (size_t j = 0; j < state.size(); ++j) {
      if (i == j) continue;
      for (const char op : kArithmeticOps) {
        const std::optional<int64_t> r = ApplyArithmeticOp(state[i], op, state[j]);
        if (!r) continue;
        const PlayCounts child = CountPlay(Replace(state, i, j, *r), target, memo);
        total.valid += child.valid;
        total.hits += child.hits;
        policy_sum += child.policy;
        ++moves;
      }
    }
  }
  // '+' is always allowed (unless it overflows), so `moves` is zero only in overflow corners.
  total.policy = moves > 0 ? policy_sum / moves : 0.0;
  memo.emplace(state, total);
  return total;
}

}  // namespace

std::optional<std::vector<CountdownStep>> SolveCountdown(const std::vector<int64_t>& numbers,
                                                         int64_t target, bool use_all) {
  State state = numbers;
  std::sort(state.begin(), state.end());
  if (state.size() < 2) return std::nullopt;
  const int most = static_cast<int>(state.size()) - 1;
  if (use_all) {
    Solver solver(target, true);
    if (!solver.Search(state, most)) return std::nullopt;
    return std::move(solver.path());
  }
  // Iterative deepening: the first depth that succeeds gives a shortest solution.
  for (int depth = 1; depth <= most; ++depth) {
    Solver solver(target, false);
    if (solver.Search(state, depth)) return std::move(solver.path());
  }
  return std::nullopt;
}

CountdownPlayStats CountdownRandomPlay(const std::vector<int64_t>& numbers, int64_t target) {
  State state = numbers;
  std::sort(state.begin(), state.end());
  absl::flat_hash_map<State, PlayCounts> memo;
  const PlayCounts counts = CountPlay(state, target, memo);
  double all = 1.0;
  for (size_t k = state.size(); k >= 2; --k) all *= static_cast<double>(k * (k - 1) * 4);
  CountdownPlayStats stats;
  stats.valid_sequences = counts.valid;
  stats.hits = counts.hits;
  stats.share_of_all_sequences = counts.hits / all;
  stats.share_of_valid_sequences = counts.valid > 0 ? counts.hits / counts.valid : 0.0;
  stats.random_policy_success = counts.policy;
  return stats;
}

}  // namespace deepsearch
