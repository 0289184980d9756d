// Hard-subset selection and pass@k statistics (DEEPSEARCH_SPEC §1.1, §2).
//
// Pass1@K is the success *rate* over K direct samples (mean accuracy), not pass@k. DeepSearch
// keeps a problem in the hard subset when at most a quarter of its K = 4 samples are correct
// (Pass1@4 <= 25%: the released data keep 0% and 25%; the paper writes "< 25%").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace deepsearch {

// The outcomes of K samples of one problem.
struct SampleOutcomes {
  std::string problem_id;
  int32_t samples = 0;
  int32_t correct = 0;
  double pass1() const { return samples > 0 ? static_cast<double>(correct) / samples : 0.0; }
};

// Whether a problem stays in the hard subset: Pass1@K <= max_pass1 (default 0.25), with at
// least one sample.
bool IsHard(const SampleOutcomes& outcomes, double max_pass1 = 0.25);

// The ids of the problems that are hard, in input order.
std::vector<std::string> SelectHardSubset(const std::vector<SampleOutcomes>& outcomes,
                                          double max_pass1 = 0.25);

// The unbiased pass@k estimate from n samples with c correct (Chen et al., 2021):
// 1 - C(n - c, k) / C(n, k), computed as a stable product. Requires 1 <= k <= n.
double PassAtK(int64_t n, int64_t c, int64_t k);

}  // namespace deepsearch
