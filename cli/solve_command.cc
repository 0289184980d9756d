// deepsearch solve --model DIR --problems FILE [--out FILE] [-k K] [--trees N] [--mode M]:
// inference-time search over a problem set, on this machine.
//
// Every problem gets a tree (mode "search": DeepSearch's MCTS_full with K leaves, the config
// file's `search` and `sampling` sections) or K direct samples (mode "rollout", the best-of-K
// baseline); the trees share one inference engine (the `engine` section). The answer of a
// problem is chosen by verification when the problem has a ground truth, otherwise by
// majority (search/tree_runner.h SummarizeSolve); pass@k is estimated from the K leaves.
//
// Output: one JSON line per problem (in input order) to --out (or stdout): id, answer,
// selection, correct, samples, correct_samples, pass_at_k, expansions, generated_tokens and,
// with --trajectories, every leaf's text, verdict and score. A progress line with rates and
// ETA goes to stderr, and a summary at the end: problems solved, mean pass@1 and pass@K,
// tokens per second, and the share of wall time spent outside the model.
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "engine/policy_loader.h"
#include "search/prompt_format.h"
#include "search/tree_runner.h"

#include "cli/commands.h"
#include "cli/deepsearch_config.h"
#include "common/core/hash.h"
#include "common/core/progress.h"
#include "common/core/status.h"
#include "common/model/torch_runtime.h"
#include "common/tasks/dataset.h"

namespace deepsearch::cli {
namespace {

struct SolveArgs {
  std::string model;
  std::string problems;
  std::string out;
  std::string config;
  std::vector<std::string> overrides;
  int32_t k = 0;  // 0: search.trajectories_per_tree
  int32_t trees = 16;
  std::string mode = "search";
  uint64_t seed = 0;
  bool trajectories = false;
};

int Fail(const absl::Status& s) {
  std::cerr << "deepsearch solve: " << s.message() << "\n";
  return kExitFailure;
}

nlohmann::json ResultJson(const Problem& problem, const TreeResult& r, const SolveSummary& s,
                          bool trajectories) {
  nlohmann::json j;
  j["id"] = problem.id;
  if (!r.status.ok()) {
    j["error"] = std::string(r.status.message());
    return j;
  }
  j["answer"] = s.answer;
  j["selection"] = s.selection;
  j["correct"] = s.correct;
  j["samples"] = s.samples;
  j["correct_samples"] = s.correct_samples;
  nlohmann::json pass = nlohmann::json::object();
  for (const auto& [k, v] : s.pass_at_k) pass[std::to_string(k)] = v;
  j["pass_at_k"] = pass;
  j["expansions"] = r.stats.expansions;
  j["generated_tokens"] = r.stats.generated_tokens;
  if (trajectories) {
    nlohmann::json leaves = nlohmann::json::array();
    for (const ScoredTrajectory& t : r.trajectories) {
      nlohmann::json l;
      l["text"] = t.response_text;
      l["correct"] = t.verdict.correct;
      l["predicted"] = t.verdict.predicted;
      l["reason"] = t.verdict.reason;
      l["final_score"] = t.final_score;
      l["steps"] = t.step_ends.size();
      leaves.push_back(std::move(l));
    }
    j["trajectories"] = std::move(leaves);
  }
  return j;
}

// The results of a solve: written in input order as trees finish, and their totals.
// Thread-safe: tree callbacks finish problems from the engine's thread.
class SolveTally {
 public:
  SolveTally(std::ostream& out, ProgressReporter& progress) : out_(out), progress_(progress) {}

  // Waits until fewer than `trees` trees are running, then counts one more.
  void WaitForRoom(size_t trees) {
    absl::MutexLock lock(&mu_);
    auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ < trees; };
    mu_.Await(absl::Condition(&room));
    ++running_;
  }

  // Problem i is done: its tree's result, or (r null) the error it never started with.
  void Finish(size_t i, const Problem& p, nlohmann::json line, const TreeResult* r,
              const SolveSummary* s) {
    absl::MutexLock lock(&mu_);
    --running_;
    const bool ok = r != nullptr && r->status.ok();
    if (!ok) ++failed_;
    if (ok && !p.answer.empty()) {
      ++with_truth_;
      solved_ += s->correct ? 1 : 0;
      pass1_ += s->pass_at_k.count(1) ? s->pass_at_k.at(1) : 0.0;
      passk_ += s->pass_at_k.count(s->samples) ? s->pass_at_k.at(s->samples) : 0.0;
    }
    if (r != nullptr) {
      generated_ += r->stats.generated_tokens;
      bookkeeping_ += r->stats.bookkeeping_seconds;
    }
    done_[i] = std::move(line);
    while (done_.count(next_to_write_) > 0) {
      out_ << done_[next_to_write_].dump() << "\n";
      done_.erase(next_to_write_++);
    }
    progress_.Add(1);
    if (r != nullptr) {
      progress_.SetStatus(
          absl::StrCat("solved ", solved_, "/", with_truth_, ", ", generated_, " tokens"));
    }
  }

  // The closing line: problems, failures, solved share and pass@k, tokens and rates.
  std::string Summary(size_t problems, int32_t k, double wall) const {
    absl::MutexLock lock(&mu_);
    std::string summary =
        absl::StrFormat("deepsearch solve: %d problems, %d failed; ", problems, failed_);
    if (with_truth_ > 0) {
      const double n = static_cast<double>(with_truth_);
      absl::StrAppendFormat(
          &summary, "%d/%d solved (%.1f%%), mean pass@1 %.3f, mean pass@%d %.3f; ", solved_,
          with_truth_, 100.0 * static_cast<double>(solved_) / n, pass1_ / n, k, passk_ / n);
    }
    absl::StrAppendFormat(
        &summary, "%d tokens generated, %.0f tokens/s; %.2f%% of wall time outside the model\n",
        generated_, static_cast<double>(generated_) / wall, 100.0 * bookkeeping_ / wall);
    return summary;
  }

  int64_t failed() const {
    absl::MutexLock lock(&mu_);
    return failed_;
  }

 private:
  std::ostream& out_;
  ProgressReporter& progress_;
  mutable absl::Mutex mu_;
  // Finished, not yet written (the output keeps the input's order).
  std::map<size_t, nlohmann::json> done_ ABSL_GUARDED_BY(mu_);
  size_t next_to_write_ ABSL_GUARDED_BY(mu_) = 0;
  size_t running_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t solved_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t with_truth_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t generated_ ABSL_GUARDED_BY(mu_) = 0;
  double pass1_ ABSL_GUARDED_BY(mu_) = 0;
  double passk_ ABSL_GUARDED_BY(mu_) = 0;
  double bookkeeping_ ABSL_GUARDED_BY(mu_) = 0;
};

// The problem set of a solve: read, with every line valid and at least one problem.
absl::StatusOr<std::vector<Problem>> ReadSolveProblems(const std::string& path) {
  DS_ASSIGN_OR_RETURN(ProblemSet set, ReadProblemsJsonlFile(path));
  if (!set.errors.empty())
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", set.ErrorSummary()));
  if (set.problems.empty())
    return absl::InvalidArgumentError(absl::StrCat(path, " has no problems"));
  return std::move(set.problems);
}

int RunSolve(const SolveArgs& args) {
  absl::StatusOr<DeepSearchConfig> config = LoadDeepSearchConfig(args.config, args.overrides);
  if (!config.ok()) return Fail(config.status());
  if (absl::Status s = ConfigureTorchRuntime(config->runtime); !s.ok()) return Fail(s);
  absl::StatusOr<std::vector<Problem>> read = ReadSolveProblems(args.problems);
  if (!read.ok()) return Fail(read.status());
  const std::vector<Problem>& problems = *read;
  absl::StatusOr<PromptFormat> format = PromptFormat::Parse(config->actor.options.prompt_template);
  if (!format.ok()) return Fail(format.status());
  absl::StatusOr<LoadedPolicy> policy = LoadPolicy(args.model, config->engine);
  if (!policy.ok()) return Fail(policy.status());

  std::ofstream file;
  if (!args.out.empty()) {
    file.open(args.out);
    if (!file) return Fail(absl::NotFoundError(absl::StrCat("cannot write ", args.out)));
  }
  std::ostream& out = args.out.empty() ? std::cout : file;

  const int32_t k = args.k > 0 ? args.k : config->search.trajectories_per_tree;
  TreeRunner runner(*policy->engine, *policy->tokenizer);
  ProgressReporter::Options progress_options;
  progress_options.label = "solve";
  progress_options.total = static_cast<int64_t>(problems.size());
  progress_options.unit = "problem";
  ProgressReporter progress(progress_options);
  SolveTally tally(out, progress);
  const auto start = absl::Now();

  for (size_t i = 0; i < problems.size(); ++i) {
    tally.WaitForRoom(static_cast<size_t>(args.trees));
    const Problem& problem = problems[i];
    TreeTask task;
    task.tree_id = absl::StrCat(i);
    task.problem = problem;
    task.mode = args.mode == "rollout" ? TreeMode::kRollout : TreeMode::kSolve;
    task.search = config->search;
    task.sampling = config->sampling.ToParams(Hash64(problem.id, args.seed));
    task.num_trajectories = k;
    absl::StatusOr<std::vector<int32_t>> prompt =
        format->Encode(*policy->tokenizer, problem.prompt, config->actor.options.max_prompt_tokens);
    absl::Status started = prompt.status();
    if (started.ok()) {
      task.prompt_tokens = *std::move(prompt);
      started = runner.Start(std::move(task), [&, i](TreeResult r) {
        const Problem& p = problems[i];
        const SolveSummary s = SummarizeSolve(p, r.trajectories);
        tally.Finish(i, p, ResultJson(p, r, s, args.trajectories), &r, &s);
      });
    }
    if (!started.ok()) {
      nlohmann::json line;
      line["id"] = problem.id;
      line["error"] = std::string(started.message());
      tally.Finish(i, problem, std::move(line), nullptr, nullptr);
    }
  }
  runner.WaitIdle();
  progress.Finish();
  out.flush();
  std::cerr << tally.Summary(problems.size(), k, absl::ToDoubleSeconds(absl::Now() - start));
  return tally.failed() == 0 ? kExitOk : kExitFailure;
}

}  // namespace

void AddSolveCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<SolveArgs>();
  CLI::App* solve = app.add_subcommand(
      "solve",
      "Inference-time search: answer every problem of a JSON Lines file with a search tree");
  solve->add_option("--model", args->model, "Model directory")->required();
  solve->add_option("--problems", args->problems, "Problems, one JSON object per line")->required();
  solve->add_option("--out", args->out, "Results, one JSON line per problem (default: stdout)");
  solve->add_option("--config", args->config, "Config file (search, sampling and engine sections)");
  solve->add_option("--set", args->overrides, "Override a config key: KEY=VALUE (repeatable)");
  solve
      ->add_option("-k,--samples", args->k,
                   "Leaves per problem (default: search.trajectories_per_tree)")
      ->check(CLI::Range(1, 1 << 16));
  solve->add_option("--trees", args->trees, "Problems searched at once")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  solve->add_option("--mode", args->mode, "search (MCTS) or rollout (K direct samples)")
      ->check(CLI::IsMember({"search", "rollout"}))
      ->capture_default_str();
  solve->add_option("--seed", args->seed, "Seed of every problem's sample streams")
      ->capture_default_str();
  solve->add_flag("--trajectories", args->trajectories, "Include every leaf in the output");
  solve->callback([args, &exit_code] { exit_code = RunSolve(*args); });
}

}  // namespace deepsearch::cli
