// The tree runner on the real engine and a (random) tiny Qwen2 model: many trees at once,
// exactly K trajectories each, behaviour log-probs equal to the model's own log-probs of the
// trajectory recomputed from scratch, reproducible trees, and no handle left behind.
#include <map>

#include <ATen/ATen.h>

#include "absl/synchronization/mutex.h"
#include "engine/engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "search/prompt_format.h"
#include "search/tree_runner.h"

#include "common/model/qwen2_config.h"
#include "common/tokenizer/char_tokenizer.h"

namespace deepsearch {
namespace {

struct Stack {
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<InferenceEngine> engine;
  int32_t eos = -1;
};

// The tiny preset with weights peaked enough that EOS shows up now and then.
std::unique_ptr<Qwen2Model> Model() {
  Qwen2Config config = *Qwen2Config::Preset("tiny", 128);
  config.initializer_range = 0.3;
  auto model = *Qwen2Model::Create(config, {});
  model->InitializeRandom(5);
  return model;
}

Stack Make(int64_t kv_budget_bytes = 64ll << 20) {
  Stack s;
  s.tokenizer = *ParseTokenizerJson(*DefaultTaskTokenizerJson(), "task");
  s.eos = *s.tokenizer->TokenToId("<eos>");
  auto model = Model();
  EngineOptions options;
  options.eos_token_ids = {s.eos};
  options.vocab_limit = s.tokenizer->vocab_size();
  options.kv_budget_bytes = kv_budget_bytes;
  static auto* metrics = new MetricsRegistry();
  options.metrics = metrics;
  const Tokenizer* tok = s.tokenizer.get();
  options.token_bytes = [tok](int32_t id) { return tok->TokenBytes(id); };
  s.engine = *InferenceEngine::Create(std::move(model), 1, options);
  return s;
}

TreeTask Task(const Tokenizer& tok, int i) {
  TreeTask t;
  t.tree_id = "tree-" + std::to_string(i);
  t.problem.id = "p" + std::to_string(i);
  t.problem.prompt = std::to_string(i) + "+" + std::to_string(i + 3) + "=?";
  t.problem.answer = std::to_string(2 * i + 3);
  t.problem.task = "math";
  t.prompt_tokens = *PromptFormat::Parse(PromptFormat::kTaskDefault)->Encode(tok, t.problem.prompt);
  t.sampling.seed = 77 + static_cast<uint64_t>(i);
  t.search.expansion_width = 4;
  t.search.max_depth = 4;
  t.search.step_tokens = 6;
  t.search.trajectories_per_tree = 4;
  return t;
}

std::map<std::string, TreeResult> RunAll(TreeRunner& runner, std::vector<TreeTask> tasks) {
  absl::Mutex mu;
  std::map<std::string, TreeResult> results;
  for (TreeTask& t : tasks) {
    const absl::Status s = runner.Start(std::move(t), [&](TreeResult r) {
      absl::MutexLock lock(&mu);
      results[r.tree_id] = std::move(r);
    });
    EXPECT_TRUE(s.ok()) << s;
  }
  runner.WaitIdle();
  return results;
}

TEST(SearchEngineTest, TreesOnTheEngineAreExactAndReproducible) {
  Stack s = Make();
  constexpr int kTrees = 6;
  std::vector<TreeTask> tasks;
  for (int i = 0; i < kTrees; ++i) tasks.push_back(Task(*s.tokenizer, i));
  std::map<std::string, TreeResult> first;
  {
    TreeRunner runner(*s.engine, *s.tokenizer);
    first = RunAll(runner, tasks);
  }
  ASSERT_EQ(first.size(), static_cast<size_t>(kTrees));
  // A fresh engine (fresh caches) gives the same trees.
  Stack again = Make();
  std::map<std::string, TreeResult> second;
  {
    TreeRunner runner(*again.engine, *again.tokenizer);
    second = RunAll(runner, tasks);
  }
  // The engine's weights, again (InitializeRandom is deterministic).
  const std::unique_ptr<Qwen2Model> reference = Model();
  int64_t checked_tokens = 0;
  int32_t eos_leaves = 0;
  int32_t depth_leaves = 0;
  for (const TreeTask& task : tasks) {
    const TreeResult& r = first[task.tree_id];
    ASSERT_TRUE(r.status.ok()) << r.status;
    ASSERT_EQ(r.trajectories.size(), 4u);
    EXPECT_GE(r.stats.expansions, 4);
    const TreeResult& r2 = second[task.tree_id];
    ASSERT_EQ(r2.trajectories.size(), 4u);
    for (size_t k = 0; k < 4; ++k) {
      const ScoredTrajectory& t = r.trajectories[k];
      EXPECT_EQ(t.response_tokens, r2.trajectories[k].response_tokens)
          << task.tree_id << " leaf " << k;
      EXPECT_EQ(t.token_scores, r2.trajectories[k].token_scores) << task.tree_id << " leaf " << k;
      ASSERT_EQ(t.logprobs.size(), t.response_tokens.size());
      ASSERT_EQ(t.token_scores.size(), t.response_tokens.size());
      // Every leaf ends with EOS or sits at depth 4 (4 full steps of 6 tokens).
      EXPECT_TRUE(t.response_tokens.back() == s.eos || t.step_ends.size() == 4u) << task.tree_id;
      (t.response_tokens.back() == s.eos ? eos_leaves : depth_leaves) += 1;
      // Behaviour log-probs = log softmax of the model's logits over the tokenizer's ids.
      std::vector<int64_t> ids(task.prompt_tokens.begin(), task.prompt_tokens.end());
      ids.insert(ids.end(), t.response_tokens.begin(), t.response_tokens.end());
      const int64_t n = static_cast<int64_t>(ids.size());
      at::Tensor input = at::tensor(ids, at::kLong).view({1, n});
      at::Tensor logits = reference->Forward(input, at::tensor(std::vector<int64_t>{n}, at::kLong));
      at::Tensor logp = at::log_softmax(logits[0].narrow(1, 0, s.tokenizer->vocab_size()), 1);
      const int64_t p = static_cast<int64_t>(task.prompt_tokens.size());
      for (size_t j = 0; j < t.response_tokens.size(); ++j) {
        const float expected =
            logp[p - 1 + static_cast<int64_t>(j)][t.response_tokens[j]].item<float>();
        ASSERT_NEAR(t.logprobs[j], expected, 2e-4)
            << task.tree_id << " leaf " << k << " token " << j;
        ++checked_tokens;
      }
    }
  }
  EXPECT_GT(checked_tokens, 200);
  // Both kinds of terminal occur.
  EXPECT_GT(eos_leaves, 0);
  EXPECT_GT(depth_leaves, 0);
  EXPECT_EQ(s.engine->stats().live_handles, 0);
  EXPECT_EQ(again.engine->stats().live_handles, 0);
  // The children of a node share its prefix: the cache served many positions.
  EXPECT_GT(s.engine->stats().tokens_reused, 0);
}

TEST(SearchEngineTest, RolloutsAndSolveOnTheEngine) {
  Stack s = Make();
  TreeRunner runner(*s.engine, *s.tokenizer);
  TreeTask rollout = Task(*s.tokenizer, 1);
  rollout.mode = TreeMode::kRollout;
  rollout.num_trajectories = 5;
  rollout.search.max_response_tokens = 12;
  rollout.search.overlong_buffer = 4;
  TreeTask solve = Task(*s.tokenizer, 2);
  solve.mode = TreeMode::kSolve;
  std::map<std::string, TreeResult> results = RunAll(runner, {rollout, solve});
  const TreeResult& r = results["tree-1"];
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.trajectories.size(), 5u);
  for (const ScoredTrajectory& t : r.trajectories) {
    EXPECT_LE(t.response_tokens.size(), 12u);
    EXPECT_EQ(t.step_ends.size(), 1u);
    const double pen =
        OverlongPenalty(rollout.search, static_cast<int64_t>(t.response_tokens.size()));
    EXPECT_NEAR(t.final_score, (t.verdict.correct ? 1.0 : -1.0) + pen, 1e-6);
  }
  const TreeResult& v = results["tree-2"];
  ASSERT_TRUE(v.status.ok()) << v.status;
  ASSERT_TRUE(v.summary.has_value());
  EXPECT_EQ(v.summary->samples, 4);
  EXPECT_EQ(v.summary->pass_at_k.count(1), 1u);
}

}  // namespace
}  // namespace deepsearch
