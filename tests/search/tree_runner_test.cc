// The tree runner against scripted policies: whole MCTS_full trees traced by hand (expansion
// order, prefixes, collection, final scores), the backtrace ablation, root re-expansion,
// rollouts with cached solutions, incomplete leaves, solve summaries, cancellation, bad
// tasks, and many concurrent trees.
#include "search/tree_runner.h"

#include <cmath>
#include <string>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "search/mock_policy.h"

#include "common/tokenizer/char_tokenizer.h"
#include "tests/search/test_policies.h"

namespace deepsearch {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class TreeRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = *ParseTokenizerJson(*DefaultTaskTokenizerJson(), "task tokenizer");
    eos_ = *tokenizer_->TokenToId("<eos>");
  }

  std::vector<int32_t> Encode(std::string_view text) const { return *tokenizer_->Encode(text); }

  // A sample of `text`; EOS appended when `eos`; every token at `logprob`.
  PolicySample Sample(std::string_view text, bool eos, float logprob = -1.0f) const {
    PolicySample s;
    s.tokens = Encode(text);
    if (eos) s.tokens.push_back(eos_);
    s.logprobs.assign(s.tokens.size(), logprob);
    s.finish = eos ? FinishReason::kEos : FinishReason::kLength;
    return s;
  }

  TreeTask Task(std::string id, TreeMode mode = TreeMode::kSearch) const {
    TreeTask t;
    t.tree_id = std::move(id);
    t.problem.id = "p1";
    t.problem.prompt = "What is 6*7?";
    t.problem.answer = "42";
    t.problem.task = "math";
    t.prompt_tokens = Encode("Q:6*7?\n");  // 7 tokens
    t.mode = mode;
    t.sampling.seed = 11;
    return t;
  }

  // Runs one task to its result.
  TreeResult Run(TreeRunner& runner, TreeTask task) {
    TreeResult out;
    absl::Notification done;
    const absl::Status started = runner.Start(std::move(task), [&](TreeResult r) {
      out = std::move(r);
      done.Notify();
    });
    EXPECT_TRUE(started.ok()) << started;
    if (started.ok()) done.WaitForNotification();
    return out;
  }

  std::unique_ptr<Tokenizer> tokenizer_;
  int32_t eos_ = -1;
};

constexpr int32_t kPromptTokens = 7;
constexpr int32_t kChunk = 4;  // every non-terminal chunk in these scripts: "abc\n" (no EOS)

// The depth of the children a request creates.
int32_t ChildDepth(absl::Span<const int32_t> prefix) {
  return static_cast<int32_t>(prefix.size() - kPromptTokens) / kChunk + 1;
}

// Width 2, d_T = 3, K = 2. Depth 1 and 2 children are open 4-token chunks; depth-3 children
// are terminal by depth. The first dive's leaves are (wrong, right); later leaves are both
// wrong, the second more confident.
TEST_F(TreeRunnerTest, SearchTreeTracedByHand) {
  int32_t leaf_expansions = 0;
  MockPolicy policy(
      [&](absl::Span<const int32_t> prefix, int32_t j, const ExpansionRequest& request) {
        EXPECT_EQ(request.sampling.max_new_tokens, 16);
        if (ChildDepth(prefix) < 3) return Sample(j == 0 ? "abc\n" : "xyz\n", false, -0.5f);
        if (j == 0) ++leaf_expansions;
        if (leaf_expansions == 1)
          return Sample(j == 0 ? "\\boxed{7}" : "\\boxed{42}", false, -0.3f);
        return Sample("\\boxed{9}", false, j == 0 ? -0.9f : -0.2f);
      });
  TreeRunner runner(policy, *tokenizer_);
  TreeTask task = Task("t1");
  task.search.expansion_width = 2;
  task.search.max_depth = 3;
  task.search.trajectories_per_tree = 2;
  task.search.step_tokens = 16;
  const TreeResult r = Run(runner, task);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.stats.expansions, 4);
  EXPECT_EQ(r.stats.nodes, 9);
  ASSERT_EQ(r.trajectories.size(), 2u);

  // Expansion order: root, its first child c1, c1's first child c11, then (global frontier,
  // both parents at Q = 1/4, the deeper one wins) c1's second child c12.
  const std::vector<ExpansionRequest> requests = policy.requests();
  ASSERT_EQ(requests.size(), 4u);
  const std::vector<int32_t> prompt = Encode("Q:6*7?\n");
  auto prefixed = [&](std::string_view text) {
    std::vector<int32_t> v = prompt;
    const std::vector<int32_t> t = Encode(text);
    v.insert(v.end(), t.begin(), t.end());
    return v;
  };
  EXPECT_EQ(requests[0].tokens, prompt);
  EXPECT_EQ(requests[1].tokens, prefixed("abc\n"));
  EXPECT_EQ(requests[2].tokens, prefixed("abc\nabc\n"));
  EXPECT_EQ(requests[3].tokens, prefixed("abc\nxyz\n"));
  // Expansion i samples with seed Rng(11).Fork(i).Next().
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(requests[i].sampling.seed, Rng(11).Fork(i).Next()) << i;
    EXPECT_EQ(requests[i].num_samples, 2);
  }

  // First leaf: the correct one of the first dive; q after both backups:
  // c1 = 2/4 (kept against the later -1), c11 = 3/4, leaf = 1.
  const ScoredTrajectory& a = r.trajectories[0];
  EXPECT_TRUE(a.verdict.correct);
  EXPECT_EQ(a.response_text, "abc\nabc\n\\boxed{42}");
  EXPECT_THAT(a.step_ends, ElementsAre(4, 8, 18));
  EXPECT_NEAR(a.token_scores[0], std::tanh(0.5), 1e-6);
  EXPECT_NEAR(a.token_scores[4], std::tanh(0.75), 1e-6);
  EXPECT_NEAR(a.token_scores[17], 1.0, 1e-6);
  EXPECT_NEAR(a.final_score, 1.0, 1e-9);
  // Second leaf: the more confident of two wrong ones (index 1); c12 = -3/4.
  const ScoredTrajectory& b = r.trajectories[1];
  EXPECT_FALSE(b.verdict.correct);
  EXPECT_EQ(b.response_text, "abc\nxyz\n\\boxed{9}");
  EXPECT_NEAR(b.token_scores[0], std::tanh(0.5), 1e-6);
  EXPECT_NEAR(b.token_scores[4], std::tanh(-0.75), 1e-6);
  EXPECT_NEAR(b.token_scores[8], -1.0, 1e-6);
  EXPECT_FLOAT_EQ(b.logprobs[8], -0.2f);
  EXPECT_NEAR(b.final_score, -1.0, 1e-9);
  EXPECT_EQ(b.versions.size(), 1u);
  // Every handle the tree held went back to the policy.
  EXPECT_EQ(policy.live_handles(), 0);
}

// The backtrace switch: after a wrong first dive, the global frontier picks the deeper open
// sibling c12, UCT from the root picks the untried root child c2.
TEST_F(TreeRunnerTest, BacktraceAblationChangesWhereTheSearchGoes) {
  for (Backtrace backtrace : {Backtrace::kGlobal, Backtrace::kUct}) {
    MockPolicy policy([&](absl::Span<const int32_t> prefix, int32_t j, const ExpansionRequest&) {
      if (ChildDepth(prefix) < 3) return Sample(j == 0 ? "abc\n" : "xyz\n", false);
      return Sample("\\boxed{1}", false);
    });
    TreeRunner runner(policy, *tokenizer_);
    TreeTask task = Task("t");
    task.search.expansion_width = 2;
    task.search.max_depth = 3;
    task.search.trajectories_per_tree = 2;
    task.search.step_tokens = 16;
    task.search.backtrace = backtrace;
    const TreeResult r = Run(runner, task);
    ASSERT_TRUE(r.status.ok()) << r.status;
    const std::vector<ExpansionRequest> requests = policy.requests();
    ASSERT_GE(requests.size(), 4u);
    std::vector<int32_t> expected = Encode("Q:6*7?\n");
    const std::vector<int32_t> step =
        Encode(backtrace == Backtrace::kGlobal ? "abc\nxyz\n" : "xyz\n");
    expected.insert(expected.end(), step.begin(), step.end());
    EXPECT_EQ(requests[3].tokens, expected) << (backtrace == Backtrace::kGlobal ? "global" : "uct");
  }
}

TEST_F(TreeRunnerTest, EmptyFrontierReExpandsTheRoot) {
  int32_t calls = 0;
  MockPolicy policy([&](absl::Span<const int32_t>, int32_t, const ExpansionRequest&) {
    ++calls;
    return Sample(calls == 1 ? "\\boxed{42}" : "\\boxed{41}", true);
  });
  TreeRunner runner(policy, *tokenizer_);
  TreeTask task = Task("t");
  task.search.expansion_width = 1;
  task.search.trajectories_per_tree = 2;
  const TreeResult r = Run(runner, task);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.stats.expansions, 2);
  EXPECT_EQ(r.stats.root_expansions, 1);
  ASSERT_EQ(r.trajectories.size(), 2u);
  EXPECT_TRUE(r.trajectories[0].verdict.correct);
  EXPECT_FALSE(r.trajectories[1].verdict.correct);
  EXPECT_EQ(r.trajectories[0].response_tokens.back(), eos_);  // EOS is part of the response
  EXPECT_EQ(r.trajectories[0].response_text, "\\boxed{42}");  // ... but not of its text
}

TEST_F(TreeRunnerTest, StepDelimiterEndsNodesWithoutEndingTheResponse) {
  MockPolicy policy(
      [&](absl::Span<const int32_t> prefix, int32_t, const ExpansionRequest& request) {
        EXPECT_THAT(request.sampling.stop_strings, ElementsAre("\n"));
        EXPECT_EQ(request.sampling.max_new_tokens, 32);
        if (prefix.size() == kPromptTokens) {
          PolicySample s = Sample("6*7=42\n", false);
          s.finish = FinishReason::kStopString;
          return s;
        }
        return Sample("\\boxed{42}", true);
      });
  TreeRunner runner(policy, *tokenizer_);
  TreeTask task = Task("t");
  task.search.expansion_width = 1;
  task.search.trajectories_per_tree = 1;
  task.search.step_tokens = 32;
  task.search.step_delimiter = "\n";
  const TreeResult r = Run(runner, task);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.trajectories.size(), 1u);
  EXPECT_THAT(r.trajectories[0].step_ends, ElementsAre(7, 18));
  EXPECT_TRUE(r.trajectories[0].verdict.correct);
}

TEST_F(TreeRunnerTest, TruncatedLeafWithoutAnAnswerIsIncomplete) {
  MockPolicy policy([&](absl::Span<const int32_t>, int32_t, const ExpansionRequest&) {
    return Sample("abc\n", false);
  });
  TreeRunner runner(policy, *tokenizer_);
  TreeTask task = Task("t");
  task.search.expansion_width = 1;
  task.search.max_depth = 2;
  task.search.trajectories_per_tree = 1;
  task.search.step_tokens = 4;
  task.search.incomplete_score = -0.5;
  const TreeResult r = Run(runner, task);
  ASSERT_TRUE(r.status.ok()) << r.status;
  const ScoredTrajectory& t = r.trajectories[0];
  EXPECT_TRUE(t.incomplete);
  EXPECT_FALSE(t.verdict.correct);
  EXPECT_NEAR(t.final_score, -0.5, 1e-9);
  // The parent (depth 1 of a depth-2 path: gamma 2/3) got -0.5 * 2/3.
  EXPECT_NEAR(t.token_scores[0], std::tanh(-1.0 / 3), 1e-6);
}

TEST_F(TreeRunnerTest, RolloutsScoreEveryTokenWithTheOutcome) {
  MockPolicy policy([&](absl::Span<const int32_t>, int32_t j, const ExpansionRequest& request) {
    EXPECT_EQ(request.sampling.max_new_tokens, 20);
    EXPECT_TRUE(request.sampling.stop_strings.empty());
    if (j == 0) return Sample("\\boxed{42}", true);
    if (j == 1) return Sample("\\boxed{41}", true);
    return Sample("thinking forever and ever", false);  // cut at 20: incomplete
  });
  TreeRunner runner(policy, *tokenizer_);
  TreeTask task = Task("r", TreeMode::kRollout);
  task.num_trajectories = 3;
  task.search.max_response_tokens = 20;
  task.search.overlong_buffer = 10;  // lengths over 10 are penalised
  task.search.incomplete_score = -1.0;
  const TreeResult r = Run(runner, task);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.trajectories.size(), 3u);
  const std::vector<ExpansionRequest> requests = policy.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].num_samples, 3);
  // "\boxed{42}<eos>" is 11 tokens: penalty -(11 - 10) / 10 = -0.1.
  EXPECT_NEAR(r.trajectories[0].final_score, 0.9, 1e-6);
  EXPECT_THAT(r.trajectories[0].token_scores, ::testing::Each(::testing::FloatNear(0.9f, 1e-6f)));
  EXPECT_THAT(r.trajectories[0].step_ends, ElementsAre(11));
  EXPECT_NEAR(r.trajectories[1].final_score, -1.1, 1e-6);
  EXPECT_TRUE(r.trajectories[2].incomplete);
  EXPECT_NEAR(r.trajectories[2].final_score, -2.0, 1e-6);  // -1 and the full penalty at 20
  EXPECT_EQ(policy.live_handles(), 0);
}

TEST_F(TreeRunnerTest, CachedSolutionsFillTheFirstSlots) {
  MockPolicy policy([&](absl::Span<const int32_t>, int32_t, const ExpansionRequest&) {
    return Sample("\\boxed{41}", true, -0.25f);
  });
  TreeRunner runner(policy, *tokenizer_);
  TreeTask task = Task("r", TreeMode::kRollout);
  task.num_trajectories = 4;
  for (int i = 0; i < 3; ++i)
    task.cached.push_back(CachedSolution{Encode("6*7=42\n\\boxed{42}"), 5});
  const TreeResult r = Run(runner, task);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.trajectories.size(), 4u);
  ASSERT_EQ(policy.requests().size(), 1u);
  EXPECT_EQ(policy.requests()[0].num_samples, 1);  // only the free slot is sampled
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(r.trajectories[static_cast<size_t>(i)].from_cache);
    EXPECT_TRUE(r.trajectories[static_cast<size_t>(i)].verdict.correct);
    EXPECT_TRUE(r.trajectories[static_cast<size_t>(i)].logprobs.empty());
    EXPECT_EQ(r.trajectories[static_cast<size_t>(i)].versions[0].first, 5);
  }
  EXPECT_FALSE(r.trajectories[3].from_cache);
  EXPECT_EQ(r.trajectories[3].logprobs.size(), 11u);

  // More cached solutions than slots: nothing is sampled.
  MockPolicy idle([&](absl::Span<const int32_t>, int32_t, const ExpansionRequest&) {
    return Sample("x", true);
  });
  TreeRunner runner2(idle, *tokenizer_);
  task.num_trajectories = 2;
  const TreeResult r2 = Run(runner2, task);
  ASSERT_TRUE(r2.status.ok());
  EXPECT_EQ(r2.trajectories.size(), 2u);
  EXPECT_TRUE(idle.requests().empty());
}

TEST_F(TreeRunnerTest, SolveModeSummarises) {
  MockPolicy policy([&](absl::Span<const int32_t>, int32_t j, const ExpansionRequest&) {
    return Sample(j == 2 ? "\\boxed{42}" : "\\boxed{40}", true, j == 2 ? -2.0f : -0.1f);
  });
  TreeRunner runner(policy, *tokenizer_);
  TreeTask task = Task("s", TreeMode::kSolve);
  task.search.expansion_width = 4;
  task.search.trajectories_per_tree = 4;
  const TreeResult r = Run(runner, task);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_TRUE(r.summary.has_value());
  // Each expansion collects one leaf: the correct one while it is there (first expansion).
  EXPECT_EQ(r.summary->selection, "verified");
  EXPECT_EQ(r.summary->answer, "42");
  EXPECT_TRUE(r.summary->correct);
  EXPECT_EQ(r.summary->samples, 4);
}

TEST_F(TreeRunnerTest, CancelledTreeReturnsItsHandles) {
  HoldingPolicy policy;
  TreeRunner runner(policy, *tokenizer_);
  TreeTask task = Task("c");
  task.search.expansion_width = 2;
  task.search.step_tokens = 4;
  absl::Notification done;
  TreeResult result;
  ASSERT_TRUE(runner
                  .Start(task,
                         [&](TreeResult r) {
                           result = std::move(r);
                           done.Notify();
                         })
                  .ok());
  WaitFor([&] { return policy.pending() == 1; });
  policy.Answer({Sample("abc\n", false), Sample("xyz\n", false)});  // handles 100, 101
  WaitFor([&] { return policy.pending() == 1; });
  EXPECT_TRUE(runner.Cancel("c"));
  EXPECT_FALSE(runner.Cancel("nope"));
  policy.Answer({Sample("abc\n", false), Sample("xyz\n", false)});  // 102, 103: dropped
  done.WaitForNotification();
  EXPECT_EQ(result.status.code(), absl::StatusCode::kCancelled);
  std::vector<int64_t> released = policy.released();
  std::sort(released.begin(), released.end());
  EXPECT_THAT(released, ElementsAre(100, 101, 102, 103));
  EXPECT_EQ(runner.active(), 0);
  EXPECT_EQ(runner.stats().cancelled, 1);
}

TEST_F(TreeRunnerTest, PolicyFailureFailsTheTree) {
  HoldingPolicy policy;
  TreeRunner runner(policy, *tokenizer_);
  absl::Notification done;
  TreeResult result;
  ASSERT_TRUE(runner
                  .Start(Task("f"),
                         [&](TreeResult r) {
                           result = std::move(r);
                           done.Notify();
                         })
                  .ok());
  WaitFor([&] { return policy.pending() == 1; });
  policy.Answer({}, absl::ResourceExhaustedError("prompt longer than the KV budget"));
  done.WaitForNotification();
  EXPECT_EQ(result.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(result.status.message()), HasSubstr("tree 'f'"));
  EXPECT_EQ(runner.stats().failed, 1);
}

TEST_F(TreeRunnerTest, BadTasksAreRefusedWithTheReason) {
  MockPolicy policy([&](absl::Span<const int32_t>, int32_t, const ExpansionRequest&) {
    return Sample("x", true);
  });
  TreeRunner runner(policy, *tokenizer_);
  auto start = [&](TreeTask t) { return runner.Start(std::move(t), [](TreeResult) {}); };
  TreeTask t = Task("");
  EXPECT_THAT(std::string(start(t).message()), HasSubstr("tree_id"));
  t = Task("a");
  t.prompt_tokens.clear();
  EXPECT_THAT(std::string(start(t).message()), HasSubstr("empty prompt"));
  t = Task("a");
  t.problem.task = "nosuchfamily";
  EXPECT_THAT(std::string(start(t).message()), HasSubstr("nosuchfamily"));
  t = Task("a");
  t.sampling.temperature = 0;
  EXPECT_THAT(std::string(start(t).message()), HasSubstr("temperature"));
  t = Task("a");
  t.search.overlong_buffer = t.search.max_response_tokens + 1;
  EXPECT_THAT(std::string(start(t).message()), HasSubstr("overlong_buffer"));
  t = Task("a");
  t.cached.push_back(CachedSolution{Encode("x"), 1});
  EXPECT_THAT(std::string(start(t).message()), HasSubstr("only used by rollouts"));
  runner.WaitIdle();
  EXPECT_EQ(runner.stats().started, 0);
}

TEST_F(TreeRunnerTest, DuplicateTreeIdIsRefusedWhileRunning) {
  HoldingPolicy policy;
  TreeRunner runner(policy, *tokenizer_);
  ASSERT_TRUE(runner.Start(Task("d"), [](TreeResult) {}).ok());
  EXPECT_EQ(runner.Start(Task("d"), [](TreeResult) {}).code(), absl::StatusCode::kAlreadyExists);
  WaitFor([&] { return policy.pending() == 1; });
  runner.Cancel("d");
  policy.Answer({Sample("a", true)});
  runner.WaitIdle();
}

// Sixteen trees on two runner threads: each tree's trajectories are the ones it gets alone
// (the samples depend only on the prefix and the expansion's seed).
TEST_F(TreeRunnerTest, ConcurrentTreesMatchTreesRunAlone) {
  auto script = [&](absl::Span<const int32_t> prefix, int32_t j, const ExpansionRequest& request) {
    Rng rng = Rng(request.sampling.seed).Fork(static_cast<uint64_t>(j));
    const int64_t roll = rng.UniformInt(0, 9);
    if (ChildDepth(prefix) >= 3 || roll < 3) {
      return Sample(roll % 2 == 0 ? "\\boxed{42}" : "\\boxed{13}", true,
                    -0.1f * static_cast<float>(roll + 1));
    }
    return Sample(roll < 6 ? "abc\n" : "xyz\n", false, -0.1f * static_cast<float>(roll));
  };
  auto make = [&](int i) {
    TreeTask t = Task("tree-" + std::to_string(i));
    t.sampling.seed = 1000 + static_cast<uint64_t>(i);
    t.search.expansion_width = 3;
    t.search.max_depth = 6;
    t.search.step_tokens = 16;
    t.search.trajectories_per_tree = 4;
    return t;
  };
  std::vector<TreeResult> alone;
  for (int i = 0; i < 16; ++i) {
    MockPolicy policy(script);
    TreeRunner runner(policy, *tokenizer_);
    alone.push_back(Run(runner, make(i)));
  }
  MockPolicy policy(script);
  TreeRunner runner(policy, *tokenizer_, TreeRunnerOptions{.threads = 2});
  absl::Mutex mu;
  std::map<std::string, TreeResult> together;
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(runner
                    .Start(make(i),
                           [&](TreeResult r) {
                             absl::MutexLock lock(&mu);
                             together[r.tree_id] = std::move(r);
                           })
                    .ok());
  }
  runner.WaitIdle();
  ASSERT_EQ(together.size(), 16u);
  for (int i = 0; i < 16; ++i) {
    const TreeResult& a = alone[static_cast<size_t>(i)];
    const TreeResult& b = together["tree-" + std::to_string(i)];
    ASSERT_TRUE(b.status.ok()) << b.status;
    ASSERT_EQ(a.trajectories.size(), 4u);
    ASSERT_EQ(b.trajectories.size(), 4u);
    for (size_t k = 0; k < 4; ++k) {
      EXPECT_EQ(a.trajectories[k].response_tokens, b.trajectories[k].response_tokens) << i;
      EXPECT_EQ(a.trajectories[k].token_scores, b.trajectories[k].token_scores) << i;
    }
  }
  EXPECT_EQ(policy.live_handles(), 0);
  EXPECT_EQ(runner.stats().succeeded, 16);
}

}  // namespace
}  // namespace deepsearch
