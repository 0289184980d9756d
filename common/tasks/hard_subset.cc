#include "common/tasks/hard_subset.h"

#include "common/core/logging.h"

namespace deepsearch {

bool IsHard(const SampleOutcomes& outcomes, double max_pass1) {
  return outcomes.samples > 0 && outcomes.pass1() <= max_pass1;
}

std::vector<std::string> SelectHardSubset(const std::vector<SampleOutcomes>& outcomes,
                                          double max_pass1) {
  std::vector<std::string> hard;
  for (const SampleOutcomes& o : outcomes) {
    if (IsHard(o, max_pass1)) hard.push_back(o.problem_id);
  }
  return hard;
}

double PassAtK(int64_t n, int64_t c, int64_t k) {
  DS_CHECK(k >= 1 && k <= n && c >= 0 && c <= n)
      << "PassAtK(" << n << ", " << c << ", " << k << ")";
  if (n - c < k) return 1.0;
  // C(n-c, k) / C(n, k) = prod_{i = n-c+1}^{n} (1 - k / i)
  double fail = 1.0;
  for (int64_t i = n - c + 1; i <= n; ++i)
    fail *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  return 1.0 - fail;
}

}  // namespace deepsearch
