#include "search/tree_runner.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"

#include "common/core/logging.h"
#include "common/core/rng.h"
#include "common/core/status.h"
#include "common/tasks/hard_subset.h"
#include "common/tasks/math_grader.h"

namespace deepsearch {

namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Whether a sample ended the response (as opposed to reaching its token limit or a step
// delimiter).
bool EndsResponse(FinishReason finish) {
  return finish == FinishReason::kEos || finish == FinishReason::kStopToken;
}

// Salt of the per-tree stream that picks random negatives (kept apart from the sample seeds).
constexpr uint64_t kChoiceStream = 0x6e656761746976ull;  // "negativ"

}  // namespace

std::string_view TreeModeName(TreeMode mode) {
  switch (mode) {
    case TreeMode::kSearch:
      return "search";
    case TreeMode::kRollout:
      return "rollout";
    case TreeMode::kSolve:
      return "solve";
  }
  return "unknown";
}

struct TreeRunner::Tree {
  TreeTask task;
  std::function<void(TreeResult)> done;
  std::shared_ptr<const TaskFamily> family;
  int32_t k = 0;  // trajectories to deliver
  std::unique_ptr<MctsTree> mcts;
  int32_t current = MctsTree::kRoot;  // the node being expanded
  std::vector<int32_t> collected;
  std::vector<ScoredTrajectory> rollouts;  // kRollout: finished slots, cached first
  Rng choice_rng{0};
  TreeStats stats;
  Clock::time_point start;
  std::atomic<bool> cancelled{false};
};

TreeRunner::TreeRunner(Policy& policy, const Tokenizer& tokenizer, TreeRunnerOptions options)
    : policy_(policy), tokenizer_(tokenizer), options_(options) {
  const int32_t threads = std::max(1, options_.threads);
  for (int32_t i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
}

TreeRunner::~TreeRunner() {
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, tree] : trees_) tree->cancelled = true;
    while (!trees_.empty()) idle_cv_.Wait(&mu_);
    stop_ = true;
    work_cv_.SignalAll();
  }
  for (std::thread& t : workers_) t.join();
}

absl::StatusOr<std::shared_ptr<const TaskFamily>> TreeRunner::Family(const std::string& spec) {
  {
    absl::MutexLock lock(&mu_);
    auto it = families_.find(spec);
    if (it != families_.end()) return it->second;
  }
  absl::StatusOr<std::unique_ptr<TaskFamily>> made = MakeTaskFamily(spec);
  if (!made.ok()) return made.status();
  std::shared_ptr<const TaskFamily> family = std::move(*made);
  absl::MutexLock lock(&mu_);
  return families_.try_emplace(spec, std::move(family)).first->second;
}

absl::Status TreeRunner::Start(TreeTask task, std::function<void(TreeResult)> done) {
  const std::string where =
      absl::StrCat("tree '", task.tree_id, "' (problem '", task.problem.id, "')");
  if (task.tree_id.empty()) return absl::InvalidArgumentError("a tree needs a tree_id");
  if (task.prompt_tokens.empty())
    return absl::InvalidArgumentError(absl::StrCat(where, ": empty prompt"));
  if (absl::Status s = task.search.Validate(); !s.ok()) return Annotate(s, where);
  const int32_t k =
      task.num_trajectories > 0 ? task.num_trajectories : task.search.trajectories_per_tree;
  if (task.mode == TreeMode::kRollout) {
    for (size_t i = 0; i < task.cached.size(); ++i) {
      if (task.cached[i].tokens.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": cached solution ", i, " has no tokens"));
      }
    }
  } else if (!task.cached.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": cached solutions are only used by rollouts, not by ",
                     std::string(TreeModeName(task.mode))));
  }
  SamplingParams check = task.sampling;
  check.max_new_tokens = 1;
  if (absl::Status s = check.Validate(); !s.ok()) return Annotate(s, where);
  absl::StatusOr<std::shared_ptr<const TaskFamily>> family = Family(task.problem.task);
  if (!family.ok()) return Annotate(family.status(), where);

  auto tree = std::make_unique<Tree>();
  tree->family = *std::move(family);
  tree->k = k;
  tree->choice_rng = Rng(task.sampling.seed).Fork(kChoiceStream);
  tree->task = std::move(task);
  tree->done = std::move(done);
  tree->start = Clock::now();
  Tree* raw = tree.get();
  {
    absl::MutexLock lock(&mu_);
    if (trees_.count(raw->task.tree_id) > 0) {
      return absl::AlreadyExistsError(absl::StrCat(where, " is already running"));
    }
    trees_.emplace(raw->task.tree_id, std::move(tree));
    ++stats_.started;
  }
  Enqueue(Event{raw, std::nullopt});
  return absl::OkStatus();
}

bool TreeRunner::Cancel(std::string_view tree_id) {
  absl::MutexLock lock(&mu_);
  auto it = trees_.find(tree_id);
  if (it == trees_.end()) return false;
  it->second->cancelled = true;
  return true;
}

int32_t TreeRunner::active() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int32_t>(trees_.size());
}

TreeRunnerStats TreeRunner::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void TreeRunner::WaitIdle() {
  absl::MutexLock lock(&mu_);
  while (!trees_.empty()) idle_cv_.Wait(&mu_);
}

void TreeRunner::Enqueue(Event event) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(event));
  work_cv_.Signal();
}

void TreeRunner::Work() {
  while (true) {
    Event event;
    {
      absl::MutexLock lock(&mu_);
      while (queue_.empty() && !stop_) work_cv_.Wait(&mu_);
      if (queue_.empty()) return;
      event = std::move(queue_.front());
      queue_.pop_front();
    }
    Handle(std::move(event));
  }
}

void TreeRunner::Handle(Event event) {
  Tree& tree = *event.tree;
  const Clock::time_point begin = Clock::now();
  if (tree.cancelled) {
    if (event.result) {
      for (const PolicySample& s : event.result->samples) {
        if (s.handle != 0) policy_.ReleaseHandle(s.handle);
      }
    }
    tree.stats.bookkeeping_seconds += SecondsSince(begin);
    Finish(tree, absl::CancelledError(absl::StrCat("tree '", tree.task.tree_id, "' cancelled")));
    return;
  }
  if (!event.result) {
    // The first step. (After a submission the tree belongs to whichever thread handles its
    // result: nothing here touches it again.)
    if (tree.task.mode == TreeMode::kRollout) {
      SubmitRollouts(tree, begin);
    } else {
      tree.mcts = std::make_unique<MctsTree>(tree.task.search);
      SubmitSearchExpansion(tree, begin);
    }
    return;
  }
  Advance(tree, *std::move(event.result));
}

void TreeRunner::Dispatch(Tree& tree, ExpansionRequest request, Clock::time_point begin) {
  tree.stats.bookkeeping_seconds += SecondsSince(begin);
  Tree* raw = &tree;
  policy_.Submit(std::move(request), [this, raw](ExpansionResult r) {
    Enqueue(Event{raw, std::move(r)});
  });
}

void TreeRunner::Advance(Tree& tree, ExpansionResult result) {
  const Clock::time_point begin = Clock::now();
  if (!result.status.ok()) {
    for (const PolicySample& s : result.samples) {
      if (s.handle != 0) policy_.ReleaseHandle(s.handle);
    }
    tree.stats.bookkeeping_seconds += SecondsSince(begin);
    Finish(tree, Annotate(result.status, absl::StrCat("tree '", tree.task.tree_id, "' expansion")));
    return;
  }
  ++tree.stats.expansions;
  for (const PolicySample& s : result.samples)
    tree.stats.generated_tokens += static_cast<int64_t>(s.tokens.size());
  if (tree.task.mode == TreeMode::kRollout) {
    AdvanceRollout(tree, std::move(result));
  } else {
    AdvanceSearch(tree, std::move(result));
  }
}

void TreeRunner::SubmitSearchExpansion(Tree& tree, Clock::time_point begin) {
  const SearchParams& p = tree.task.search;
  const MctsNode& node = tree.mcts->node(tree.current);
  ExpansionRequest request;
  if (tree.current == MctsTree::kRoot) {
    request.tokens = tree.task.prompt_tokens;
    if (!node.children.empty()) ++tree.stats.root_expansions;
  } else if (node.handle != 0) {
    request.prefix_handle = node.handle;
  } else {
    request.tokens = tree.task.prompt_tokens;
    const std::vector<int32_t> path = tree.mcts->PathTokens(tree.current);
    request.tokens.insert(request.tokens.end(), path.begin(), path.end());
  }
  request.num_samples = p.expansion_width;
  request.sampling = tree.task.sampling;
  request.sampling.max_new_tokens = p.step_tokens;
  request.sampling.stop_strings.clear();
  if (!p.step_delimiter.empty()) request.sampling.stop_strings.push_back(p.step_delimiter);
  request.sampling.seed =
      Rng(tree.task.sampling.seed).Fork(static_cast<uint64_t>(tree.stats.expansions)).Next();
  request.min_weight_version = tree.task.min_weight_version;
  Dispatch(tree, std::move(request), begin);
}

void TreeRunner::VerifyLeaf(Tree& tree, int32_t id) {
  MctsNode& node = tree.mcts->mutable_node(id);
  const std::string text = tokenizer_.Decode(tree.mcts->PathTokens(id), /*skip_special=*/true);
  Verdict verdict = tree.family->Verify(tree.task.problem, text);
  node.reward = verdict.correct ? 1.0 : -1.0;
  node.incomplete = !verdict.correct && !node.eos && !LastBoxedOnly(text).has_value();
  if (node.incomplete) node.reward = tree.task.search.incomplete_score;
  node.verdict = std::move(verdict);
}

void TreeRunner::AdvanceSearch(Tree& tree, ExpansionResult result) {
  const Clock::time_point begin = Clock::now();
  MctsTree& mcts = *tree.mcts;
  std::vector<ChildChunk> chunks;
  chunks.reserve(result.samples.size());
  for (PolicySample& s : result.samples) {
    ChildChunk c;
    c.eos = EndsResponse(s.finish);
    c.tokens = std::move(s.tokens);
    c.logprobs = std::move(s.logprobs);
    c.weight_version = s.weight_version;
    c.handle = s.handle;
    chunks.push_back(std::move(c));
  }
  const std::vector<int32_t> ids = mcts.AddChildren(tree.current, std::move(chunks));
  std::vector<int32_t> terminals;
  for (int32_t id : ids) {
    MctsNode& node = mcts.mutable_node(id);
    if (!node.terminal) continue;
    terminals.push_back(id);
    // A terminal is never expanded: its prefix handle is not needed.
    if (node.handle != 0) policy_.ReleaseHandle(node.handle);
    node.handle = 0;
    VerifyLeaf(tree, id);
  }
  const Backtrace backtrace = tree.task.search.backtrace;
  int32_t next = -1;
  if (!terminals.empty()) {
    const int32_t leaf = mcts.ChooseLeaf(terminals, tree.choice_rng);
    mcts.mutable_node(leaf).collected = true;
    mcts.Backup(leaf, mcts.node(leaf).reward);
    tree.collected.push_back(leaf);
    if (static_cast<int32_t>(tree.collected.size()) == tree.k) {
      tree.stats.bookkeeping_seconds += SecondsSince(begin);
      Finish(tree, absl::OkStatus());
      return;
    }
    next = backtrace == Backtrace::kGlobal ? mcts.SelectGlobal() : mcts.DescendUct();
  } else {
    next = mcts.SelectUct(tree.current);
  }
  // UCT found only terminals below: fall back to the frontier; an empty frontier grows the
  // root by another expansion.
  if (next == -1) next = mcts.SelectGlobal();
  if (next == -1) next = MctsTree::kRoot;
  tree.current = next;
  SubmitSearchExpansion(tree, begin);
}

ScoredTrajectory TreeRunner::ScoreRollout(Tree& tree, std::vector<int32_t> tokens,
                                          std::vector<float> logprobs, bool ended,
                                          int64_t weight_version, bool from_cache) {
  const SearchParams& p = tree.task.search;
  ScoredTrajectory t;
  t.response_text = tokenizer_.Decode(tokens, /*skip_special=*/true);
  t.verdict = tree.family->Verify(tree.task.problem, t.response_text);
  double reward = t.verdict.correct ? 1.0 : -1.0;
  t.incomplete = !t.verdict.correct && !ended && !LastBoxedOnly(t.response_text).has_value();
  if (t.incomplete) reward = p.incomplete_score;
  t.reward = reward;
  const int32_t length = static_cast<int32_t>(tokens.size());
  t.final_score = reward + OverlongPenalty(p, length);
  t.token_scores.assign(tokens.size(), static_cast<float>(t.final_score));
  t.step_ends = {length};
  t.versions = {{weight_version, length}};
  t.response_tokens = std::move(tokens);
  t.logprobs = std::move(logprobs);
  t.from_cache = from_cache;
  return t;
}

void TreeRunner::SubmitRollouts(Tree& tree, Clock::time_point begin) {
  const SearchParams& p = tree.task.search;
  // Cached solutions first (spec §2): they take the first min(|cached|, K) slots.
  const size_t cached = std::min(tree.task.cached.size(), static_cast<size_t>(tree.k));
  for (size_t i = 0; i < cached; ++i) {
    CachedSolution& c = tree.task.cached[i];
    if (c.tokens.size() > static_cast<size_t>(p.max_response_tokens))
      c.tokens.resize(static_cast<size_t>(p.max_response_tokens));
    // A cached response has no behaviour log-probs: the learner computes them.
    tree.rollouts.push_back(ScoreRollout(tree, std::move(c.tokens), {}, /*ended=*/true,
                                         c.weight_version,
                                         /*from_cache=*/true));
  }
  const int32_t fresh = tree.k - static_cast<int32_t>(cached);
  if (fresh == 0) {
    tree.stats.bookkeeping_seconds += SecondsSince(begin);
    Finish(tree, absl::OkStatus());
    return;
  }
  ExpansionRequest request;
  request.tokens = tree.task.prompt_tokens;
  request.num_samples = fresh;
  request.sampling = tree.task.sampling;
  request.sampling.max_new_tokens = p.max_response_tokens;
  request.sampling.stop_strings.clear();
  request.sampling.seed = Rng(tree.task.sampling.seed).Fork(0).Next();
  request.min_weight_version = tree.task.min_weight_version;
  Dispatch(tree, std::move(request), begin);
}

void TreeRunner::AdvanceRollout(Tree& tree, ExpansionResult result) {
  const Clock::time_point begin = Clock::now();
  for (PolicySample& s : result.samples) {
    if (s.handle != 0) policy_.ReleaseHandle(s.handle);
    const bool ended = EndsResponse(s.finish);
    tree.rollouts.push_back(ScoreRollout(tree, std::move(s.tokens), std::move(s.logprobs), ended,
                                         s.weight_version, /*from_cache=*/false));
  }
  tree.stats.bookkeeping_seconds += SecondsSince(begin);
  Finish(tree, absl::OkStatus());
}

void TreeRunner::Finish(Tree& tree, absl::Status status) {
  const Clock::time_point begin = Clock::now();
  TreeResult result;
  result.tree_id = tree.task.tree_id;
  result.mode = tree.task.mode;
  if (tree.mcts != nullptr) {
    // Return every handle still held: the tree's memory in the engine goes with it.
    for (int32_t id = 0; id < tree.mcts->size(); ++id) {
      const int64_t handle = tree.mcts->node(id).handle;
      if (handle != 0) policy_.ReleaseHandle(handle);
    }
    tree.stats.nodes = tree.mcts->size();
  }
  if (status.ok()) {
    if (tree.mcts != nullptr) {
      for (int32_t leaf : tree.collected) {
        ScoredTrajectory t = tree.mcts->Score(leaf);
        t.response_text = tokenizer_.Decode(t.response_tokens, /*skip_special=*/true);
        result.trajectories.push_back(std::move(t));
      }
    } else {
      result.trajectories = std::move(tree.rollouts);
    }
    if (tree.task.mode == TreeMode::kSolve)
      result.summary = SummarizeSolve(tree.task.problem, result.trajectories);
  }
  result.status = std::move(status);
  tree.mcts.reset();
  tree.stats.bookkeeping_seconds += SecondsSince(begin);
  tree.stats.wall_seconds = SecondsSince(tree.start);
  result.stats = tree.stats;
  std::function<void(TreeResult)> done = std::move(tree.done);
  std::unique_ptr<Tree> owned;
  {
    absl::MutexLock lock(&mu_);
    auto it = trees_.find(tree.task.tree_id);
    DS_CHECK(it != trees_.end()) << "finishing unknown tree " << tree.task.tree_id;
    owned = std::move(it->second);
    trees_.erase(it);
    if (result.status.ok()) {
      ++stats_.succeeded;
    } else if (absl::IsCancelled(result.status)) {
      ++stats_.cancelled;
    } else {
      ++stats_.failed;
    }
    stats_.expansions += result.stats.expansions;
    stats_.generated_tokens += result.stats.generated_tokens;
    stats_.bookkeeping_seconds += result.stats.bookkeeping_seconds;
  }
  if (done) done(std::move(result));
  absl::MutexLock lock(&mu_);
  if (trees_.empty()) idle_cv_.SignalAll();
}

SolveSummary SummarizeSolve(const Problem& problem,
                            const std::vector<ScoredTrajectory>& trajectories) {
  std::vector<SampleVerdict> verdicts;
  verdicts.reserve(trajectories.size());
  for (const ScoredTrajectory& t : trajectories)
    verdicts.push_back({t.verdict.predicted, t.verdict.correct, t.incomplete});
  return SelectAnswer(!problem.answer.empty(), verdicts);
}

}  // namespace deepsearch
