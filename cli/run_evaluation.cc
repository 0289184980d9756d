#include "cli/run_evaluation.h"

#include <algorithm>
#include <cstdio>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

#include "common/core/files.h"
#include "common/core/status.h"
#include "common/tasks/hard_subset.h"

namespace deepsearch::cli {

namespace fs = std::filesystem;

std::string EvalKind::Label() const {
  return direct ? absl::StrFormat("direct-t%.1f", temperature) : std::string("tree");
}

std::vector<EvalKind> EvalKinds(int32_t direct_samples, const std::vector<double>& temperatures,
                                int32_t tree_samples) {
  std::vector<EvalKind> kinds;
  if (direct_samples > 0) {
    for (double t : temperatures)
      kinds.push_back(EvalKind{.direct = true, .temperature = t, .samples = direct_samples});
  }
  if (tree_samples > 0)
    kinds.push_back(EvalKind{.direct = false, .temperature = 1.0, .samples = tree_samples});
  return kinds;
}

int64_t Evaluation::samples() const {
  int64_t s = 0;
  for (const auto& [n, c] : problems) s += n;
  return s;
}

int64_t Evaluation::correct_samples() const {
  int64_t s = 0;
  for (const auto& [n, c] : problems) s += c;
  return s;
}

int32_t Evaluation::solved() const {
  int32_t s = 0;
  for (const auto& [n, c] : problems) s += c > 0 ? 1 : 0;
  return s;
}

double Evaluation::accuracy() const {
  const int64_t n = samples();
  return n > 0 ? static_cast<double>(correct_samples()) / static_cast<double>(n) : 0.0;
}

double Evaluation::pass_at_n() const {
  return problems.empty() ? 0.0 : static_cast<double>(solved()) / problems.size();
}

double Evaluation::pass_at(int64_t k) const {
  double sum = 0.0;
  int64_t counted = 0;
  for (const auto& [n, c] : problems) {
    if (n < k) continue;
    sum += PassAtK(n, c, k);
    ++counted;
  }
  return counted > 0 ? sum / static_cast<double>(counted) : 0.0;
}

SearchParams EvaluationSearch(const SearchParams& run) {
  const SearchParams method;
  SearchParams eval = run;
  eval.backtrace = method.backtrace;
  eval.q_update = method.q_update;
  eval.negative_choice = method.negative_choice;
  eval.entropy_bonus = method.entropy_bonus;
  eval.depth_bonus = method.depth_bonus;
  return eval;
}

std::string EvaluationName(const Evaluation& e) {
  return absl::StrCat("held-out@", e.step, ":", e.generated_tokens, ":", e.screening_tokens, ":",
                      e.trained_tokens, ":", e.kind.Label());
}

bool ParseEvaluationName(const std::string& name, Evaluation& e) {
  std::vector<std::string> parts = absl::StrSplit(name, absl::ByAnyChar("@:"));
  int64_t values[4] = {0, 0, 0, 0};
  if (parts.size() != 6 || parts[0] != "held-out") return false;
  for (int i = 0; i < 4; ++i) {
    if (!absl::SimpleAtoi(parts[static_cast<size_t>(i) + 1], &values[i])) return false;
  }
  e.step = values[0];
  e.generated_tokens = values[1];
  e.screening_tokens = values[2];
  e.trained_tokens = values[3];
  return true;
}

namespace {

// k = 1, 2, 4, ... below n, then n.
std::vector<int64_t> CurveKs(int64_t n) {
  std::vector<int64_t> ks;
  for (int64_t k = 1; k < n; k *= 2) ks.push_back(k);
  if (n > 0) ks.push_back(n);
  return ks;
}

int64_t SamplesPerProblem(const Evaluation& e) {
  int64_t most = 0;
  for (const auto& [n, c] : e.problems) most = std::max(most, n);
  return most;
}

}  // namespace

absl::Status WriteEvaluations(const fs::path& eval_csv, const fs::path& pass_at_k_csv,
                              const std::vector<Evaluation>& evals) {
  std::string csv =
      "step,generated_tokens,screening_tokens,trained_tokens,weight_version,eval,temperature,"
      "problems,samples,correct_samples,pass1,solved,pass_at_n,eval_tokens\n";
  std::string curve = "step,generated_tokens,eval,k,pass_at_k\n";
  for (const Evaluation& e : evals) {
    if (!e.done) continue;
    absl::StrAppend(&csv, e.step, ",", e.generated_tokens, ",", e.screening_tokens, ",",
                    e.trained_tokens, ",", e.weight_version, ",", e.kind.Label(), ",",
                    absl::StrFormat("%.2f", e.kind.temperature), ",", e.problems.size(), ",",
                    e.samples(), ",", e.correct_samples(), ",",
                    absl::StrFormat("%.4f", e.accuracy()), ",", e.solved(), ",",
                    absl::StrFormat("%.4f", e.pass_at_n()), ",", e.eval_tokens, "\n");
    for (int64_t k : CurveKs(SamplesPerProblem(e))) {
      absl::StrAppend(&curve, e.step, ",", e.generated_tokens, ",", e.kind.Label(), ",", k, ",",
                      absl::StrFormat("%.4f", e.pass_at(k)), "\n");
    }
  }
  std::error_code error;
  fs::create_directories(eval_csv.parent_path(), error);
  DS_RETURN_IF_ERROR(WriteFileAtomically(eval_csv.string(), csv));
  return WriteFileAtomically(pass_at_k_csv.string(), curve);
}

absl::Status PlotEvaluations(const std::vector<Evaluation>& evals,
                             const std::vector<EvalKind>& kinds, const fs::path& png,
                             const fs::path& work_dir, const std::string& title) {
  std::string plot;
  for (size_t i = 0; i < kinds.size(); ++i) {
    const std::string label = kinds[i].Label();
    std::string data = "# generated_tokens_millions pass1 pass_at_n\n";
    for (const Evaluation& e : evals) {
      if (e.done && e.kind.Label() == label) {
        absl::StrAppend(&data, absl::StrFormat("%.6f %.4f %.4f\n", e.generated_tokens / 1e6,
                                               e.accuracy(), e.pass_at_n()));
      }
    }
    const std::string path = (work_dir / absl::StrCat("heldout_", label, ".dat")).string();
    DS_RETURN_IF_ERROR(WriteFileAtomically(path, data));
    if (!plot.empty()) absl::StrAppend(&plot, ", ");
    const EvalKind& k = kinds[i];
    if (k.direct) {
      absl::StrAppend(&plot, "'", path,
                      "' using 1:2 with linespoints lw 2 pt 7 title 'direct pass@1 (", k.samples,
                      " samples, T = ", absl::StrFormat("%.1f", k.temperature), ")'");
      if (i == 0) {
        absl::StrAppend(&plot, ", '", path,
                        "' using 1:3 with linespoints lw 2 pt 5 title 'direct pass@", k.samples,
                        " (T = ", absl::StrFormat("%.1f", k.temperature), ")'");
      }
    } else {
      absl::StrAppend(&plot, "'", path,
                      "' using 1:2 with linespoints lw 1 dt 2 pt 6 title 'tree: correct share of ",
                      k.samples, " leaves (secondary)'");
    }
  }
  if (plot.empty()) return absl::FailedPreconditionError("no evaluation to plot");
  const std::string script =
      absl::StrCat("set terminal pngcairo size 960,560 noenhanced font 'sans,11'\n", "set output '",
                   png.string(), "'\n", "set title '", title, "'\n",
                   "set xlabel 'generated tokens (training job, millions)'\n",
                   "set ylabel 'held-out accuracy'\n", "set format x '%.1f'\n",
                   "set offsets 0, graph 0.05, 0, 0\n", "set yrange [0:*]\n", "set grid\n",
                   "set key top left\n", "plot ", plot, "\n");
  const std::string script_path = (work_dir / "heldout_accuracy.gp").string();
  DS_RETURN_IF_ERROR(WriteFileAtomically(script_path, script));
  const std::string command = absl::StrCat("gnuplot '", script_path, "' 2>&1");
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return absl::UnavailableError("cannot run gnuplot");
  std::string output;
  char buffer[512];
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  const int status = ::pclose(pipe);
  if (status != 0) {
    return absl::UnavailableError(absl::StrCat(
        "gnuplot failed (",
        status == (127 << 8) ? "not installed: apt-get install gnuplot-nox" : output, ")"));
  }
  return absl::OkStatus();
}

const Evaluation* LatestEvaluation(const std::vector<Evaluation>& evals, const std::string& label) {
  const Evaluation* latest = nullptr;
  for (const Evaluation& e : evals) {
    if (e.done && e.kind.Label() == label) latest = &e;
  }
  return latest;
}

const Evaluation* FirstEvaluation(const std::vector<Evaluation>& evals, const std::string& label) {
  for (const Evaluation& e : evals) {
    if (e.done && e.kind.Label() == label) return &e;
  }
  return nullptr;
}

}  // namespace deepsearch::cli
