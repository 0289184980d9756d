// Countdown's arithmetic, exact solver and solution statistics, shared by the "countdown"
// task family (countdown_task.cc) and the measurement tool (bench/countdown_policy_bench.cc).
//
// A state is a multiset of non-negative integers. A move takes two of them, a and b, and
// puts back a op b: a+b, a-b (only when a >= b: no negatives), a*b, a/b (only when b != 0
// divides a), as ApplyArithmeticOp allows. With use_all, a solution is n-1 moves that leave
// exactly the target; otherwise it is one or more moves whose last result is the target.
//
// Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "common/tasks/arithmetic_step.h"

namespace deepsearch {

// A move is an ArithmeticStep (arithmetic_step.h): the same rules apply.
using CountdownStep = ArithmeticStep;

// Exhaustive search with memoised dead ends. With use_all, every number is used exactly once;
// without it, the shortest solution is returned. nullopt: no solution. Fast for up to six
// numbers.
std::optional<std::vector<CountdownStep>> SolveCountdown(const std::vector<int64_t>& numbers,
                                                         int64_t target, bool use_all);

// How often random play reaches the target when every number must be used (n-1 moves).
struct CountdownPlayStats {
  // Complete sequences of valid moves (a move is an ordered pair of positions and an op), and
  // how many of them end on the target.
  double valid_sequences = 0;
  double hits = 0;
  // hits over every sequence of (ordered pair, op) choices, n(n-1)*4 * (n-1)(n-2)*4 * ... *
  // 2*1*4 of them: invalid moves count as misses.
  double share_of_all_sequences = 0;
  // hits / valid_sequences.
  double share_of_valid_sequences = 0;
  // The success probability of a policy that picks uniformly among the valid moves.
  double random_policy_success = 0;
};
CountdownPlayStats CountdownRandomPlay(const std::vector<int64_t>& numbers, int64_t target);

}  // namespace deepsearch
