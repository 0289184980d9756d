// The "math" task family: problems with free-form answers (DeepMath-style data sets),
// verified by the math grader. It generates nothing; its problems come from files or clients.
// "math" or "math:mode=strict" is DeepSearch's strict reward; "math:mode=equivalent" also
// accepts answers of equal value (math_grader.h).
#include "absl/strings/str_cat.h"

#include "common/core/logging.h"
#include "common/tasks/families.h"
#include "common/tasks/math_grader.h"

namespace deepsearch {
namespace {

class MathTask final : public TaskFamily {
 public:
  explicit MathTask(GradeMode mode) : mode_(mode) {}
  std::string name() const override { return "math"; }
  std::string spec() const override {
    return mode_ == GradeMode::kStrict ? "math:mode=strict" : "math:mode=equivalent";
  }
  bool generates() const override { return false; }
  Problem Generate(Rng&) const override {
    DS_CHECK(false) << "the math task family does not generate problems";
    return {};
  }
  std::optional<std::string> Solve(const Problem&) const override { return std::nullopt; }
  Verdict Verify(const Problem& problem, std::string_view response) const override {
    return GradeMathResponse(response, problem.answer, mode_);
  }

 private:
  GradeMode mode_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<TaskFamily>> MakeMathTask(TaskOptions& options) {
  absl::StatusOr<std::string> mode = options.String("mode", "strict");
  if (!mode.ok()) return mode.status();
  if (*mode != "strict" && *mode != "equivalent") {
    return absl::InvalidArgumentError(
        absl::StrCat("task math: mode must be strict or equivalent, got '", *mode, "'"));
  }
  return std::unique_ptr<TaskFamily>(
      new MathTask(*mode == "strict" ? GradeMode::kStrict : GradeMode::kEquivalent));
}

}  // namespace deepsearch
