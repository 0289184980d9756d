// Task families: generators of verifiable problems, their exact solvers, worked solutions
// and verifiers, registered by name and chosen by a config string (MODELS_AND_TASKS §2).
//
//   absl::StatusOr<std::unique_ptr<TaskFamily>> t = MakeTaskFamily("countdown:n=4,max=25");
//   Rng rng(seed);
//   Problem p = (*t)->Generate(rng);
//   std::string worked = *(*t)->Solve(p);          // a response the verifier accepts
//   Verdict v = (*t)->Verify(p, model_response);
//
// Response format shared by every family (so the tree search, the tokenizer and the math
// grader see one convention): reasoning steps, each ending in "\n", then the final answer as
// "\boxed{...}". The step delimiter is the newline. Everything is printable ASCII plus "\n",
// the alphabet of the built-in task tokenizer.
//
// A spec is "name" or "name:key=value,key=value"; unknown keys and out-of-range values are
// refused with an error naming them. Problems carry their full spec in Problem::task, so a
// problem is verified by the family (and knobs) that generated it.
//
// Thread-safety: a TaskFamily is immutable once made; Generate takes the caller's Rng, so
// any number of threads may use one family.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

#include "common/core/rng.h"
#include "common/tasks/problem.h"

namespace deepsearch {

class TaskFamily {
 public:
  virtual ~TaskFamily() = default;

  // The family's name ("countdown").
  virtual std::string name() const = 0;
  // Whether Generate and Solve work (the "math" family only verifies given problems).
  virtual bool generates() const { return true; }
  // The canonical spec with every knob ("countdown:max=25,max_target=100,n=4,use_all=true").
  virtual std::string spec() const = 0;

  // A new problem from `rng`: prompt, answer, task = spec(), id = StableProblemId(...).
  // Deterministic in the Rng's state. Requires generates().
  virtual Problem Generate(Rng& rng) const = 0;

  // A worked solution in the response format, found by the family's exact solver; nullopt
  // when the problem has none (possible for problems not made by Generate).
  virtual std::optional<std::string> Solve(const Problem& problem) const = 0;

  // Grades a response to `problem`: +1 when it is a correct solution under the family's rules
  // (every step valid, the final answer right), -1 with the reason otherwise.
  virtual Verdict Verify(const Problem& problem, std::string_view response) const = 0;
};

// Knobs parsed from a spec's "key=value" list; a family reads the ones it knows and
// Finish() refuses the rest.
class TaskOptions {
 public:
  // Parses "name" or "name:k=v,k=v". Errors name the malformed part.
  static absl::StatusOr<TaskOptions> Parse(std::string_view spec);

  const std::string& name() const { return name_; }
  // Typed getters with defaults; each records the key as known. Errors name the key, the
  // expected type and range, and the value found.
  absl::StatusOr<int64_t> Int(std::string_view key, int64_t fallback, int64_t min, int64_t max);
  absl::StatusOr<bool> Bool(std::string_view key, bool fallback);
  absl::StatusOr<std::string> String(std::string_view key, std::string fallback);
  // OK when every key was read; else an error naming the unknown keys.
  absl::Status Finish() const;

 private:
  std::string name_;
  std::map<std::string, std::string, std::less<>> values_;
  std::vector<std::string> known_;
};

using TaskFactory = std::function<absl::StatusOr<std::unique_ptr<TaskFamily>>(TaskOptions&)>;

// Registers a family under `name`, beside the built-in ones (families.h). Thread-safe; a name
// registered twice is a programming error.
void RegisterTaskFamily(std::string name, TaskFactory factory);
// The registered names, sorted.
std::vector<std::string> TaskFamilyNames();
// Makes a family from a spec. An empty spec or "math" is the math family (free-form answers,
// graded by the DeepSearch math grader; it generates no problems).
absl::StatusOr<std::unique_ptr<TaskFamily>> MakeTaskFamily(std::string_view spec);

}  // namespace deepsearch
