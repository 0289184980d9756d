// Runs many search trees at once over one Policy: DeepSearch's MCTS_full (spec §1.3), plain
// rollouts, and inference-time search, each as a state machine that advances whenever its
// outstanding expansion comes back. Trees never wait on each other: every tree has at most
// one expansion in flight (the algorithm is sequential within a tree), and the policy
// (the engine) batches the expansions of all trees together.
//
//   TreeRunner runner(engine, tokenizer);
//   runner.Start(task, [](TreeResult r) { ... r.trajectories ... });
//
// Modes:
//   kSearch  MCTS_full: expansions of expansion_width children of at most step_tokens tokens
//            (a node also ends after step_delimiter when one is set); terminal on EOS or at
//            max_depth; one leaf collected per expansion that produced terminals (correct
//            first, then the most confident); backup, then the global frontier (or UCT from
//            the root, per the backtrace switch); without terminals the dive continues into
//            the UCT child. Exactly K trajectories, scored from the final q values (§3.1).
//   kRollout K direct samples of up to max_response_tokens (the GRPO baseline; screening),
//            each scored with its reward plus the overlong penalty on every token. Cached
//            solutions, when given, fill the first min(|cached|, K) slots (spec §2) and only
//            the rest is sampled.
//   kSolve   the kSearch tree, plus a summary: the answer chosen by verification when the
//            problem has a ground truth, else by majority, and pass@k statistics.
//
// Verification decodes the root-to-leaf response (special tokens dropped) and asks the
// problem's task family. A leaf truncated without EOS (at max_depth, or a rollout at its
// length limit) that is not correct and holds no \boxed{} answer is incomplete and earns
// incomplete_score.
//
// Sampling: the task's temperature, top-p, top-k and stop ids; max_new_tokens and stop
// strings come from the mode. Expansion i of a tree samples with seed
// Rng(task seed).Fork(i).Next(), so a tree on fixed weights is reproducible whatever else
// runs beside it.
//
// Memory: a tree keeps the policy's handles of its non-terminal nodes (terminal nodes are
// never expanded; their handles go back at once) and returns all of them when it finishes.
//
// Threading: Start, Cancel, active, stats and WaitIdle are thread-safe. Tree bookkeeping
// (adding children, verifying, backing up, selecting) runs on the runner's own threads,
// never on the policy's: the engine's loop only enqueues. `done` runs once per started tree
// on a runner thread. The policy must outlive the runner; the destructor cancels the trees
// still running and waits for their outstanding expansions.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "search/mcts_tree.h"
#include "search/policy.h"
#include "search/search_params.h"

#include "common/sampling/sampler.h"
#include "common/tasks/answer_selection.h"
#include "common/tasks/problem.h"
#include "common/tasks/task.h"
#include "common/tokenizer/tokenizer.h"

namespace deepsearch {

enum class TreeMode { kSearch, kRollout, kSolve };
std::string_view TreeModeName(TreeMode mode);

// A verified solution from the cache, substituted for a rollout slot.
struct CachedSolution {
  std::vector<int32_t> tokens;
  int64_t weight_version = 0;
};

struct TreeTask {
  std::string tree_id;  // unique among the runner's active trees
  Problem problem;
  std::vector<int32_t> prompt_tokens;
  TreeMode mode = TreeMode::kSearch;
  SearchParams search;
  SamplingParams sampling;
  int32_t num_trajectories = 0;  // K; 0: search.trajectories_per_tree
  int64_t min_weight_version = 0;
  std::vector<CachedSolution> cached;  // kRollout only
};

// The answer of a solve, chosen from its trajectories' verdicts (common/tasks/answer_selection.h).
SolveSummary SummarizeSolve(const Problem& problem,
                            const std::vector<ScoredTrajectory>& trajectories);

struct TreeStats {
  int32_t expansions = 0;
  int32_t root_expansions = 0;  // of which re-expansions of the root after the frontier ran dry
  int32_t nodes = 0;
  int64_t generated_tokens = 0;
  double bookkeeping_seconds = 0.0;  // runner-thread time spent on this tree
  double wall_seconds = 0.0;         // from Start to the result
};

struct TreeResult {
  absl::Status status;
  std::string tree_id;
  TreeMode mode = TreeMode::kSearch;
  std::vector<ScoredTrajectory> trajectories;  // exactly K when status is OK
  std::optional<SolveSummary> summary;         // kSolve
  TreeStats stats;
};

struct TreeRunnerOptions {
  int32_t threads = 1;
};

struct TreeRunnerStats {
  int64_t started = 0;
  int64_t succeeded = 0;
  int64_t failed = 0;
  int64_t cancelled = 0;
  int64_t expansions = 0;
  int64_t generated_tokens = 0;
  double bookkeeping_seconds = 0.0;
};

class TreeRunner {
 public:
  TreeRunner(Policy& policy, const Tokenizer& tokenizer, TreeRunnerOptions options = {});
  ~TreeRunner();
  TreeRunner(const TreeRunner&) = delete;
  TreeRunner& operator=(const TreeRunner&) = delete;

  // Validates the task (ids, prompt, parameters, the task family) and starts the tree. An
  // invalid task is refused here with a message naming the problem, and `done` never runs.
  absl::Status Start(TreeTask task, std::function<void(TreeResult)> done);
  // Stops a tree: its result (CANCELLED) comes once its outstanding expansion returns.
  // False when no such tree is running.
  bool Cancel(std::string_view tree_id);
  int32_t active() const;
  TreeRunnerStats stats() const;
  // Blocks until no tree is running.
  void WaitIdle();

 private:
  struct Tree;
  struct Event {
    Tree* tree = nullptr;
    std::optional<ExpansionResult> result;  // none: the tree's first step
  };

  void Work();
  void Enqueue(Event event);
  void Handle(Event event);
  void Advance(Tree& tree, ExpansionResult result);
  void AdvanceSearch(Tree& tree, ExpansionResult result);
  void AdvanceRollout(Tree& tree, ExpansionResult result);
  using Clock = std::chrono::steady_clock;
  // Submits the tree's next request; `begin` starts the bookkeeping time charged to it.
  void SubmitSearchExpansion(Tree& tree, Clock::time_point begin);
  void SubmitRollouts(Tree& tree, Clock::time_point begin);
  void Dispatch(Tree& tree, ExpansionRequest request, Clock::time_point begin);
  // Verifies a terminal of the search tree: verdict, reward, incomplete flag.
  void VerifyLeaf(Tree& tree, int32_t id);
  ScoredTrajectory ScoreRollout(Tree& tree, std::vector<int32_t> tokens,
                                std::vector<float> logprobs, bool ended, int64_t weight_version,
                                bool from_cache);
  void Finish(Tree& tree, absl::Status status);
  absl::StatusOr<std::shared_ptr<const TaskFamily>> Family(const std::string& spec);

  Policy& policy_;
  const Tokenizer& tokenizer_;
  const TreeRunnerOptions options_;

  mutable absl::Mutex mu_;
  absl::CondVar work_cv_;
  absl::CondVar idle_cv_;
  std::deque<Event> queue_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<Tree>, std::less<>> trees_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<const TaskFamily>> families_ ABSL_GUARDED_BY(mu_);
  TreeRunnerStats stats_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace deepsearch
