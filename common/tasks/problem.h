// Problems with verifiable answers, the verdict on a response, and problem ids.
//
// A Problem is what the system trains on or solves: a prompt, its ground-truth answer, and
// the task that verifies responses to it ("countdown:n=4,max=25", or "math" for free-form
// answers graded by the DeepSearch math grader). It mirrors deepsearch.v1.Problem.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace deepsearch {

struct Problem {
  std::string id;
  std::string prompt;
  std::string answer;
  std::string task;  // a task spec; empty means "math"
  std::map<std::string, std::string> metadata;

  friend bool operator==(const Problem&, const Problem&) = default;
};

// The verifier's judgement of one response (DEEPSEARCH_SPEC §1.3): +1 when correct, -1
// otherwise.
struct Verdict {
  bool correct = false;
  double reward = -1.0;
  // The answer extracted from the response, normalised the way it was compared.
  std::string predicted;
  // The ground truth, normalised the same way.
  std::string expected;
  // Why the response is not correct (empty when it is): "no \boxed{} in the last 300
  // characters", "step 2: 7 is not available", ...
  std::string reason;

  static Verdict Correct(std::string predicted, std::string expected) {
    return {true, 1.0, std::move(predicted), std::move(expected), ""};
  }
  static Verdict Incorrect(std::string predicted, std::string expected, std::string reason) {
    return {false, -1.0, std::move(predicted), std::move(expected), std::move(reason)};
  }
};

// A stable id derived from the content: "p-" + 16 hex digits of XXH3-64 over the prompt and
// the answer (length-prefixed, so ("ab", "c") and ("a", "bc") differ). The same problem gets
// the same id on every machine and run.
std::string StableProblemId(std::string_view prompt, std::string_view answer);

}  // namespace deepsearch
