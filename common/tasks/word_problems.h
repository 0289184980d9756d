// The templated word problems of the "word" task family (word_task.cc): fourteen scenarios
// (a shop's apples, a train's distance, money and purchases, a library, a bus, a garden,
// cookies, a water tank, savings, trading cards, a farm's eggs, a school, pages left to
// read, a parking lot), each a list of sentence patterns with the arithmetic they stand for.
//
// A problem is an opening sentence that sets a running quantity (a number, or a product of
// two), events that change it (add or remove a number or a product of two, multiply by a
// small number, keep one of some equal parts), and the scenario's question about the
// quantity now. Each operation is one statement of the worked solution ("3*12=36"), so a
// problem with `ops` operations is solved in exactly `ops` statements. Numbers are drawn in
// [1, max]; counts (boxes, hours, multipliers, divisors) in [2, min(12, max)]; every
// intermediate value is a non-negative integer no larger than 20*max; divisions are exact.
// Every number a statement uses is written in the prompt or computed by an earlier statement.
//
// Thread-safe (pure functions over constant tables).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/rng.h"
#include "common/tasks/arithmetic_step.h"

namespace deepsearch {

struct WordProblem {
  std::string scenario;               // the template's name ("shop")
  std::string prompt;                 // the sentences and the question, then "\n"
  std::vector<ArithmeticStep> steps;  // the worked solution, one statement each
  int64_t answer = 0;
};

// The scenarios, by index.
int WordScenarioCount();
std::string_view WordScenarioName(int scenario);

// A problem from `scenario` with exactly `ops` (>= 1) operations and numbers up to `max`
// (>= 2). Deterministic in the Rng's state.
WordProblem GenerateWordProblem(int scenario, int ops, int64_t max, Rng& rng);

// Reads a prompt written by GenerateWordProblem back into its scenario and operations and
// solves it; nullopt when no scenario's patterns match the whole prompt or an operation is
// not allowed (a negative count, an inexact share).
std::optional<WordProblem> SolveWordPrompt(std::string_view prompt);

}  // namespace deepsearch
