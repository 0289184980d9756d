// Bytes as "response NUL ground truth": the math grader in both modes, and the verifier of
// every task family on a problem with that truth.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/tasks/math_grader.h"
#include "common/tasks/task.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const size_t cut = bytes.find('\0');
  const std::string_view response = bytes.substr(0, cut);
  const std::string_view truth = cut == std::string_view::npos ? "" : bytes.substr(cut + 1);
  (void)deepsearch::GradeMathResponse(response, truth, deepsearch::GradeMode::kStrict);
  (void)deepsearch::GradeMathResponse(response, truth, deepsearch::GradeMode::kEquivalent);
  static const std::vector<std::string>* const kTasks = [] {
    auto* names = new std::vector<std::string>(deepsearch::TaskFamilyNames());
    names->push_back("countdown:n=4");
    return names;
  }();
  for (const std::string& spec : *kTasks) {
    auto family = deepsearch::MakeTaskFamily(spec);
    if (!family.ok()) continue;
    deepsearch::Problem p;
    p.id = "fuzz";
    p.task = spec;
    p.prompt = std::string(truth);
    p.answer = std::string(truth);
    (void)(*family)->Verify(p, response);
  }
  return 0;
}
