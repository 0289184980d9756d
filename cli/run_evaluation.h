// The held-out evaluations of `deepsearch run` (cli/run_command.cc): what each measures, its
// pass@k estimates, the CSV files and the plot. Torch-free and gRPC-free.
//
// At every evaluation point (each run.eval_every training steps, and the end) the run submits
// one SOLVE job per kind below, with the weights the actors hold at that moment:
//   direct  the paper's evaluation of the policy: run.eval_direct_samples direct samples per
//           problem from the prompt (no search), one job per temperature in
//           run.eval_temperatures. pass@1 is the mean share of correct samples; pass@k for
//           k < n is the unbiased estimator 1 - C(n - c, k) / C(n, k) (Chen et al. 2021),
//           averaged over the problems. The headline number.
//   tree    the method's search: one tree of run.eval_samples leaves per problem (the
//           method's own search even when the run trains with an ablated one). Its "pass@1"
//           is the share of correct leaves, which counts a solved tree's copies of one correct
//           text several times: a measure of what search finds, not of the policy.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "search/search_params.h"

namespace deepsearch::cli {

// What one evaluation job measures.
struct EvalKind {
  bool direct = true;        // direct samples; false: a search tree per problem
  double temperature = 1.0;  // direct: the sampling temperature; tree: the run's sampling
  int32_t samples = 32;      // per problem
  // "direct-t1.0", "tree": the `eval` column of the CSV files and part of the job's name.
  std::string Label() const;
};

// The kinds of one evaluation point, the headline (direct at the first temperature) first.
// Either list may be empty (direct_samples 0: no direct evaluation; tree_samples 0: no tree).
std::vector<EvalKind> EvalKinds(int32_t direct_samples, const std::vector<double>& temperatures,
                                int32_t tree_samples);

// One evaluation job and, once done, what it measured.
struct Evaluation {
  int64_t step = 0;
  // The training job's token counts when the evaluation was submitted: every generated
  // token (screening included), the part spent screening, and the trained tokens.
  int64_t generated_tokens = 0;
  int64_t screening_tokens = 0;
  int64_t trained_tokens = 0;
  EvalKind kind;
  std::string job_id;
  bool done = false;
  int64_t weight_version = 0;
  int64_t eval_tokens = 0;  // tokens the evaluation itself generated
  // Per problem: (samples, correct samples).
  std::vector<std::pair<int64_t, int64_t>> problems;

  int64_t samples() const;
  int64_t correct_samples() const;
  int32_t solved() const;  // problems with a correct sample
  // Mean pass@1: the share of correct samples.
  double accuracy() const;
  // The share of problems with a correct sample (pass@n, n = the samples per problem).
  double pass_at_n() const;
  // The mean unbiased pass@k over the problems with at least k samples.
  double pass_at(int64_t k) const;
};

// The held-out search: the run's node sizes and constants, but the method's own choices where
// the config switches in an ablation (backtrace, q update, negative choice, bonuses), so that
// runs that train with an ablated search are measured with the same search as the others.
SearchParams EvaluationSearch(const SearchParams& run);

// The job name that carries an evaluation's step and token counts across a restart of the
// run (a resumed run finds its jobs by request id and reads them back from the name).
std::string EvaluationName(const Evaluation& e);
// Fills step and the token counts from a name written by EvaluationName; false if it is not
// one.
bool ParseEvaluationName(const std::string& name, Evaluation& e);

// metrics/eval.csv: one row per finished evaluation;
// metrics/eval_pass_at_k.csv: the pass@k curve of every finished evaluation (k = 1, 2, 4, ...
// up to its samples per problem, and that number).
absl::Status WriteEvaluations(const std::filesystem::path& eval_csv,
                              const std::filesystem::path& pass_at_k_csv,
                              const std::vector<Evaluation>& evals);

// Held-out accuracy against the training job's generated tokens, drawn by gnuplot: direct
// pass@1 and pass@n at the first temperature (the headline), the other temperatures' pass@1,
// and the tree's share of correct leaves as a dashed secondary line. `work_dir` receives the
// gnuplot script and its data, one file per kind.
absl::Status PlotEvaluations(const std::vector<Evaluation>& evals,
                             const std::vector<EvalKind>& kinds, const std::filesystem::path& png,
                             const std::filesystem::path& work_dir, const std::string& title);

// The latest finished evaluation of `label`, if any.
const Evaluation* LatestEvaluation(const std::vector<Evaluation>& evals, const std::string& label);
// The first finished evaluation of `label`, if any.
const Evaluation* FirstEvaluation(const std::vector<Evaluation>& evals, const std::string& label);

}  // namespace deepsearch::cli
