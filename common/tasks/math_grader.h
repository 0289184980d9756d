// The math answer grader: DeepSearch's reward for free-form answers.
//
// kStrict reproduces DeepSearch's training reward exactly (the `compute_score_boxed` of its
// fork of veRL's math_dapo.py; DEEPSEARCH_SPEC §1.3 "The grader's exact behaviour"): keep the
// last 300 characters (Unicode code points) of the response, take the last brace-balanced
// \boxed{...} (none: the prediction is "[INVALID]"), normalise prediction and ground truth
// with normalize_final_answer (the text after the last '=', the fixed substitution and
// removal lists, the $...$, \text{}, \textbf{}, \overline{}, \boxed{} unwrapping regexes, the
// \fracab and \sqrta fixes, commas out of digit strings, surrounding whitespace), and compare
// the two strings for equality: +1 or -1. Python's semantics are followed where they matter
// (code points, '.' not matching a newline, str.isdigit with Python 3.11's Unicode 14 table,
// str.strip). tests/data/grader/strict_golden.jsonl, graded by a Python oracle of the
// reference, pins this behaviour record by record.
//
// kEquivalent is not DeepSearch's reward: it accepts everything kStrict accepts, and when the
// normalised strings differ it compares the values they denote (math_equivalence.h): "0.5"
// equals "\frac{1}{2}", "\left[1, 2\right)" equals "[1, 2)", "\{2, 1\}" equals "\{1, 2\}".
// Exact rationals only; whatever it cannot parse is not equal. A response without a box is
// wrong in both modes (unless the ground truth normalises to "[INVALID]").
//
// Thread-safe (no shared mutable state).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/tasks/problem.h"

namespace deepsearch {

enum class GradeMode { kStrict, kEquivalent };

// Grades `response` against `ground_truth`. Verdict::predicted and ::expected hold the two
// normalised strings (in both modes); ::reason says why it is wrong: "no \boxed{} in the last
// 300 characters", "'12' != '13'" (kStrict), "not equal: 1/2 != 2/3" or "cannot compare
// '\sqrt{2}' and '1.414'" (kEquivalent).
Verdict GradeMathResponse(std::string_view response, std::string_view ground_truth, GradeMode mode);

// The pieces of the strict grader, exposed for tests and reuse. UTF-8 in and out.
// The last brace-balanced "\boxed{...}" of `text` (the whole span), or nullopt.
std::optional<std::string> LastBoxedOnly(std::string_view text);
// normalize_final_answer.
std::string NormalizeFinalAnswer(std::string_view answer);

}  // namespace deepsearch
