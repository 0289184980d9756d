// Problem sets as JSON Lines: one JSON object per line.
//
// Reading accepts DeepMath-style fields: the statement under "question", "problem" or
// "prompt"; the ground truth under "final_answer" or "answer" (a string or a number); an
// optional "id" (derived from the content with StableProblemId when absent) and "task" (a
// task spec; empty = "math"); every other scalar field is kept as metadata. Blank lines are
// skipped. A malformed line (not JSON, not an object, no statement, no answer, a task spec
// the task registry does not make, a duplicate id) is reported with its 1-based line number and the
// reason, and every other line is still read: nothing valid is lost to a bad neighbour.
//
// Writing emits {"id", "prompt", "answer", "task", ...metadata} per line, which reads back to
// the same problems.
#pragma once

#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "common/tasks/problem.h"

namespace deepsearch {

struct LineError {
  int64_t line = 0;  // 1-based
  std::string message;
};

struct ProblemSet {
  std::vector<Problem> problems;
  std::vector<LineError> errors;  // malformed lines, in file order
  // "line 3: no answer (expected \"final_answer\" or \"answer\"); line 9: not valid JSON"
  std::string ErrorSummary(size_t max_errors = 10) const;
};

// Reads every line of `in`.
ProblemSet ReadProblemsJsonl(std::istream& in);
// Opens and reads a file; NotFound when it cannot be opened.
absl::StatusOr<ProblemSet> ReadProblemsJsonlFile(const std::string& path);

void WriteProblemJsonl(const Problem& problem, std::ostream& out);
absl::Status WriteProblemsJsonlFile(const std::string& path, const std::vector<Problem>& problems);

}  // namespace deepsearch
