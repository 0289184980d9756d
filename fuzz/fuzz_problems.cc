// Bytes as a JSONL problem set.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "common/tasks/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  const deepsearch::ProblemSet set = deepsearch::ReadProblemsJsonl(in);
  (void)set.ErrorSummary();
  // What was read writes back out and reads again to the same problems.
  std::ostringstream out;
  for (const deepsearch::Problem& p : set.problems) deepsearch::WriteProblemJsonl(p, out);
  std::istringstream again(out.str());
  if (deepsearch::ReadProblemsJsonl(again).problems.size() != set.problems.size()) __builtin_trap();
  return 0;
}
