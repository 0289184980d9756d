// The actor process against in-process learner and cache servers (tests/actor/
// fake_services.h) and scripted policies: lease -> trajectories -> ack; failed leases;
// cached problems; revoked leases; a learner that is down at start, or restarts with batches
// unacked; following the weight stream; a draining shutdown.
#include "actor/actor.h"

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "search/mock_policy.h"
#include "search/prompt_format.h"

#include "common/tokenizer/char_tokenizer.h"
#include "tests/actor/fake_services.h"
#include "tests/search/test_policies.h"

namespace deepsearch {
namespace {

using testing::CacheState;
using testing::FakeCache;
using testing::FakeLearner;
using testing::FakeServer;
using ::testing::HasSubstr;
using testing::LearnerState;

class ActorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = *ParseTokenizerJson(*DefaultTaskTokenizerJson(), "task tokenizer");
    eos_ = *tokenizer_->TokenToId("<eos>");
    ASSERT_TRUE(learner_.Start().ok());
  }

  PolicySample Sample(std::string_view text, bool eos, float logprob = -0.5f) const {
    PolicySample s;
    s.tokens = *tokenizer_->Encode(text);
    if (eos) s.tokens.push_back(eos_);
    s.logprobs.assign(s.tokens.size(), logprob);
    s.finish = eos ? FinishReason::kEos : FinishReason::kLength;
    return s;
  }

  // A policy whose every sample answers 42, the right answer to Lease()'s problems.
  std::unique_ptr<MockPolicy> Answering(std::string answer = "42") {
    return std::make_unique<MockPolicy>(
        [this, answer](absl::Span<const int32_t>, int32_t, const ExpansionRequest&) {
          return Sample("6*7=42\n\\boxed{" + answer + "}", true);
        });
  }

  static v1::Lease Lease(const std::string& id, v1::LeaseMode mode = v1::LEASE_MODE_SEARCH,
                         int32_t k = 2) {
    return testing::SixSevensLease(id, "p-" + id, mode, k);
  }

  void Queue(v1::Lease lease) {
    absl::MutexLock lock(&learner_state_.mu);
    learner_state_.queue.push_back(std::move(lease));
  }

  ActorOptions Options() const {
    ActorOptions o;
    o.actor_id = "actor-test";
    o.learner_address = learner_.address();
    o.max_trees = 4;
    o.renew_interval = absl::Milliseconds(30);
    o.rpc_timeout = absl::Seconds(5);
    o.idle_poll = absl::Milliseconds(10);
    o.backoff_initial = absl::Milliseconds(5);
    o.backoff_max = absl::Milliseconds(50);
    o.status_interval = absl::ZeroDuration();
    return o;
  }

  size_t Completed() {
    absl::MutexLock lock(&learner_state_.mu);
    return learner_state_.completed.size();
  }
  size_t Failures() {
    absl::MutexLock lock(&learner_state_.mu);
    return learner_state_.failures.size();
  }

  std::unique_ptr<Tokenizer> tokenizer_;
  int32_t eos_ = -1;
  LearnerState learner_state_;
  FakeServer<FakeLearner, LearnerState> learner_{&learner_state_, "deepsearch.v1.LearnerService"};
};

TEST_F(ActorTest, LeasesBecomeTreesWhoseTrajectoriesAreStreamedAndAcked) {
  std::unique_ptr<MockPolicy> policy = Answering();
  for (int i = 0; i < 3; ++i) Queue(Lease("L" + std::to_string(i)));
  Actor actor(Options(), RpcConfig{}, {.policy = policy.get(), .tokenizer = tokenizer_.get()});
  ASSERT_TRUE(actor.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return Completed() == 3; }));
  ASSERT_TRUE(WaitFor([&] { return actor.stats().trajectories_acked == 6; }));
  actor.Shutdown(absl::Seconds(5));

  const int64_t actor_generated = actor.stats().generated_tokens;
  absl::MutexLock lock(&learner_state_.mu);
  ASSERT_EQ(learner_state_.trajectories.size(), 6u);
  // Each tree's sampled tokens ride once, on its first trajectory, and add up to the actor's
  // own count.
  int64_t carried = 0;
  for (const auto& [id, t] : learner_state_.trajectories) {
    const bool first = id.size() > 2 && id.substr(id.size() - 2) == "/0";
    if (first) {
      EXPECT_GE(t.tree_generated_tokens(), 18) << id;
    } else {
      EXPECT_EQ(t.tree_generated_tokens(), 0) << id;
    }
    carried += t.tree_generated_tokens();
  }
  EXPECT_EQ(carried, actor_generated);
  const std::vector<int32_t> prompt =
      *PromptFormat::Parse(PromptFormat::kTaskDefault)->Encode(*tokenizer_, "What is 6*7?");
  for (int i = 0; i < 3; ++i) {
    for (int k = 0; k < 2; ++k) {
      const std::string id = "L" + std::to_string(i) + ".1/" + std::to_string(k);
      ASSERT_EQ(learner_state_.trajectories.count(id), 1u) << id;
      const v1::Trajectory& t = learner_state_.trajectories[id];
      EXPECT_EQ(t.lease_id(), "L" + std::to_string(i));
      EXPECT_EQ(t.tree_id(), "L" + std::to_string(i) + ".1");
      EXPECT_EQ(t.job_id(), "job-1");
      EXPECT_EQ(t.problem_id(), "p-L" + std::to_string(i));
      EXPECT_EQ(std::vector<int32_t>(t.prompt_tokens().begin(), t.prompt_tokens().end()), prompt);
      EXPECT_EQ(t.response_text(), "6*7=42\n\\boxed{42}");
      EXPECT_EQ(t.response_tokens_size(), 18);
      EXPECT_EQ(t.behavior_logprobs_size(), 18);
      EXPECT_EQ(t.token_scores_size(), 18);
      EXPECT_EQ(t.verdict().outcome(), v1::Verdict::OUTCOME_CORRECT);
      // 18 tokens, under max_response_tokens - overlong_buffer = 48: no penalty.
      EXPECT_FLOAT_EQ(t.final_score(), 1.0f);
      ASSERT_EQ(t.versions_size(), 1);
      EXPECT_EQ(t.versions(0).weight_version(), 1);
      EXPECT_EQ(t.versions(0).end(), 18);
      EXPECT_FALSE(t.from_cache());
    }
  }
  EXPECT_EQ(learner_state_.duplicates, 0);
  EXPECT_TRUE(learner_state_.failures.empty());
  ASSERT_FALSE(learner_state_.lease_requests.empty());
  EXPECT_EQ(learner_state_.lease_requests[0].actor_id(), "actor-test");
  EXPECT_EQ(learner_state_.lease_requests[0].max_leases(), 4);
  EXPECT_EQ(learner_state_.lease_requests[0].weight_version(), 1);
  EXPECT_EQ(policy->live_handles(), 0);
}

TEST_F(ActorTest, LeasesThatCannotRunAreReportedWithTheReason) {
  std::unique_ptr<MockPolicy> policy = Answering();
  v1::Lease bad_task = Lease("bad-task");
  bad_task.mutable_problem()->set_task("nosuchfamily");
  v1::Lease no_id = Lease("no-id");
  no_id.mutable_problem()->clear_id();
  v1::Lease long_prompt = Lease("long");
  long_prompt.mutable_problem()->set_prompt(std::string(100, 'x'));
  v1::Lease bad_sampling = Lease("bad-sampling");
  bad_sampling.mutable_sampling()->set_top_p(3.0f);
  for (v1::Lease l : {bad_task, no_id, long_prompt, bad_sampling, Lease("good")})
    Queue(std::move(l));
  ActorOptions options = Options();
  options.max_prompt_tokens = 50;
  Actor actor(options, RpcConfig{}, {.policy = policy.get(), .tokenizer = tokenizer_.get()});
  ASSERT_TRUE(actor.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return Completed() == 1 && Failures() == 4; }));
  actor.Shutdown(absl::Seconds(5));
  absl::MutexLock lock(&learner_state_.mu);
  std::map<std::string, std::string> reasons;
  for (const v1::LeaseFailure& f : learner_state_.failures) reasons[f.lease_id()] = f.reason();
  EXPECT_THAT(reasons["bad-task"], HasSubstr("nosuchfamily"));
  EXPECT_THAT(reasons["no-id"], HasSubstr("no id"));
  EXPECT_THAT(reasons["long"], HasSubstr("more than the limit of 50"));
  EXPECT_THAT(reasons["bad-sampling"], HasSubstr("top_p"));
  EXPECT_EQ(learner_state_.completed, std::vector<std::string>{"good"});
}

TEST_F(ActorTest, CachedProblemsAreServedFromTheCacheAndNewSolutionsAreStored) {
  CacheState cache_state;
  FakeServer<FakeCache, CacheState> cache(&cache_state, "deepsearch.v1.CacheService");
  ASSERT_TRUE(cache.Start().ok());
  {
    absl::MutexLock lock(&cache_state.mu);
    v1::StoredSolution s;
    s.set_response_text("6*7=42\n\\boxed{42}");  // no tokens: the actor tokenizes the text
    s.set_weight_version(3);
    cache_state.stored["p-cached"].push_back(s);
  }
  std::unique_ptr<MockPolicy> policy = Answering();
  v1::Lease cached = Lease("cached", v1::LEASE_MODE_SEARCH, 3);
  cached.mutable_problem()->set_id("p-cached");
  cached.set_use_solution_cache(true);
  Queue(cached);
  ActorOptions options = Options();
  options.cache_address = cache.address();
  Actor actor(options, RpcConfig{}, {.policy = policy.get(), .tokenizer = tokenizer_.get()});
  ASSERT_TRUE(actor.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return Completed() == 1; }));
  // The two fresh correct samples reach the cache.
  ASSERT_TRUE(WaitFor([&] {
    absl::MutexLock lock(&cache_state.mu);
    return cache_state.puts.size() == 2;
  }));
  actor.Shutdown(absl::Seconds(5));
  EXPECT_EQ(actor.stats().cached_problems, 1);
  // One direct-rollout request for the two free slots, full length, no tree.
  const std::vector<ExpansionRequest> requests = policy->requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].num_samples, 2);
  EXPECT_EQ(requests[0].sampling.max_new_tokens, 64);
  absl::MutexLock lock(&learner_state_.mu);
  ASSERT_EQ(learner_state_.trajectories.size(), 3u);
  const v1::Trajectory& first = learner_state_.trajectories["cached.1/0"];
  EXPECT_TRUE(first.from_cache());
  // The tree's two fresh samples of 18 tokens, carried by its first trajectory.
  EXPECT_EQ(first.tree_generated_tokens(), 36);
  EXPECT_EQ(first.behavior_logprobs_size(), 0);
  EXPECT_EQ(first.versions(0).weight_version(), 3);
  EXPECT_EQ(first.verdict().outcome(), v1::Verdict::OUTCOME_CORRECT);
  EXPECT_FALSE(learner_state_.trajectories["cached.1/1"].from_cache());
  absl::MutexLock cache_lock(&cache_state.mu);
  EXPECT_EQ(cache_state.puts[0].problem().id(), "p-cached");
  EXPECT_EQ(cache_state.puts[0].problem().answer(), "42");
  EXPECT_EQ(cache_state.puts[0].response_text(), "6*7=42\n\\boxed{42}");
  EXPECT_EQ(cache_state.puts[0].weight_version(), 1);
}

TEST_F(ActorTest, RevokedLeaseHasItsTreeDropped) {
  HoldingPolicy policy;
  Queue(Lease("revoked"));
  Actor actor(Options(), RpcConfig{}, {.policy = &policy, .tokenizer = tokenizer_.get()});
  ASSERT_TRUE(actor.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return policy.pending() == 1; }));
  {
    absl::MutexLock lock(&learner_state_.mu);
    learner_state_.revoked.insert("revoked");
  }
  ASSERT_TRUE(WaitFor([&] { return actor.stats().leases_revoked == 1; }));
  policy.Answer({Sample("\\boxed{42}", true), Sample("\\boxed{42}", true)});
  ASSERT_TRUE(WaitFor([&] { return actor.stats().trees_running == 0; }));
  actor.Shutdown(absl::Seconds(5));
  absl::MutexLock lock(&learner_state_.mu);
  EXPECT_TRUE(learner_state_.trajectories.empty());
  EXPECT_TRUE(learner_state_.failures.empty());  // the learner already knows
  EXPECT_GE(learner_state_.renew_calls, 1);
  EXPECT_EQ(policy.released().size(), 2u);
}

TEST_F(ActorTest, LearnerDownAtStartIsRetried) {
  const int port = learner_.port();
  learner_.Stop();
  std::unique_ptr<MockPolicy> policy = Answering();
  Queue(Lease("late"));
  Actor actor(Options(), RpcConfig{}, {.policy = policy.get(), .tokenizer = tokenizer_.get()});
  ASSERT_TRUE(actor.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return actor.stats().rpc_failures >= 2; }));
  ASSERT_TRUE(learner_.Start(port).ok());
  ASSERT_TRUE(WaitFor([&] { return Completed() == 1; }));
  actor.Shutdown(absl::Seconds(5));
  absl::MutexLock lock(&learner_state_.mu);
  EXPECT_EQ(learner_state_.trajectories.size(), 2u);
}

// The learner ingests a batch but its ack is lost, then it restarts: the actor re-sends the
// unacked batch on a new stream and the learner counts it as a duplicate, not twice.
TEST_F(ActorTest, LearnerRestartResendsUnackedBatchesIdempotently) {
  {
    absl::MutexLock lock(&learner_state_.mu);
    learner_state_.ack = false;
  }
  std::unique_ptr<MockPolicy> policy = Answering();
  Queue(Lease("first"));
  Actor actor(Options(), RpcConfig{}, {.policy = policy.get(), .tokenizer = tokenizer_.get()});
  ASSERT_TRUE(actor.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return Completed() == 1; }));
  EXPECT_EQ(actor.stats().trajectories_acked, 0);
  const int port = learner_.port();
  learner_.Stop();
  {
    absl::MutexLock lock(&learner_state_.mu);
    learner_state_.ack = true;
  }
  Queue(Lease("second"));
  ASSERT_TRUE(learner_.Start(port).ok());
  ASSERT_TRUE(WaitFor([&] {
    return actor.stats().trajectories_acked == 2 && actor.stats().trajectories_duplicate == 2;
  }));
  actor.Shutdown(absl::Seconds(5));
  const ActorStats stats = actor.stats();
  EXPECT_GE(stats.batches_resent, 1);
  EXPECT_GE(stats.stream_reconnects, 1);
  absl::MutexLock lock(&learner_state_.mu);
  EXPECT_EQ(learner_state_.trajectories.size(), 4u);  // first.1/0-1 once, second.1/0-1
  EXPECT_EQ(learner_state_.duplicates, 2);
}

// A learner that is up (it answers keepalives and reads batches) but acknowledges nothing:
// after actor.ack_timeout the actor opens the stream again and resends, and once the learner
// answers, the batches are acknowledged as the repeats they are. Nothing waits forever.
TEST_F(ActorTest, AStreamWithoutAcksIsReopenedAfterTheAckTimeout) {
  {
    absl::MutexLock lock(&learner_state_.mu);
    learner_state_.ack = false;
  }
  std::unique_ptr<MockPolicy> policy = Answering();
  Queue(Lease("first"));
  ActorOptions options = Options();
  options.ack_timeout = absl::Milliseconds(300);
  Actor actor(options, RpcConfig{}, {.policy = policy.get(), .tokenizer = tokenizer_.get()});
  ASSERT_TRUE(actor.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return actor.stats().batches_resent >= 2; }));
  EXPECT_EQ(actor.stats().trajectories_acked, 0);
  EXPECT_GE(actor.stats().stream_reconnects, 2);
  {
    absl::MutexLock lock(&learner_state_.mu);
    learner_state_.ack = true;
  }
  ASSERT_TRUE(WaitFor([&] { return actor.stats().trajectories_duplicate == 2; }));
  actor.Shutdown(absl::Seconds(5));
  absl::MutexLock lock(&learner_state_.mu);
  EXPECT_EQ(learner_state_.trajectories.size(), 2u);  // ingested once, whatever was resent
}

WeightSet Weights(int64_t version, std::vector<float> values) {
  WeightSet set;
  set.version = version;
  set.model_config_json = "{}";
  const absl::Status s =
      set.Add("model.norm.weight", Dtype::kF32, {static_cast<int64_t>(values.size())},
              std::string_view(reinterpret_cast<const char*>(values.data()), values.size() * 4));
  EXPECT_TRUE(s.ok()) << s;
  return set;
}

// The actor installs every published version: the first in full, and after the cache
// service restarts, the next as a delta against the one it holds.
TEST_F(ActorTest, FollowsTheWeightStreamAcrossACacheRestart) {
  CacheState cache_state;
  FakeServer<FakeCache, CacheState> cache(&cache_state, "deepsearch.v1.CacheService");
  ASSERT_TRUE(cache.Start().ok());
  {
    absl::MutexLock lock(&cache_state.mu);
    cache_state.versions.push_back(Weights(2, {1, 2, 3, 4}));
  }
  absl::Mutex mu;
  std::vector<WeightSet> installed;
  std::unique_ptr<MockPolicy> policy = Answering();
  ActorOptions options = Options();
  options.cache_address = cache.address();
  Actor actor(options, RpcConfig{},
              {.policy = policy.get(),
               .tokenizer = tokenizer_.get(),
               .install_weights = [&](const WeightSet& set) {
                 absl::MutexLock lock(&mu);
                 installed.push_back(set);
                 return absl::OkStatus();
               }});
  ASSERT_TRUE(actor.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return actor.stats().weight_version == 2; }));
  const int port = cache.port();
  cache.Stop();
  {
    absl::MutexLock lock(&cache_state.mu);
    cache_state.versions.push_back(Weights(3, {1, 2, 3.5f, 4}));
  }
  ASSERT_TRUE(cache.Start(port).ok());
  ASSERT_TRUE(WaitFor([&] { return actor.stats().weight_version == 3; }));
  // Leases now say which weights the actor holds.
  Queue(Lease("after"));
  ASSERT_TRUE(WaitFor([&] { return Completed() == 1; }));
  actor.Shutdown(absl::Seconds(5));
  {
    absl::MutexLock lock(&mu);
    ASSERT_EQ(installed.size(), 2u);
    EXPECT_EQ(installed[0].version, 2);
    EXPECT_EQ(installed[1].version, 3);
    EXPECT_EQ(installed[1].payload, Weights(3, {1, 2, 3.5f, 4}).payload);
  }
  absl::MutexLock lock(&cache_state.mu);
  ASSERT_GE(cache_state.subscriptions.size(), 2u);
  EXPECT_EQ(cache_state.subscriptions[0].have_version(), 0);
  EXPECT_TRUE(cache_state.subscriptions[0].accept_delta());
  EXPECT_EQ(cache_state.subscriptions.back().have_version(), 2);
  EXPECT_TRUE(cache_state.subscriptions.back().accept_delta());
  EXPECT_EQ(cache_state.sent_encodings.back(), WeightEncoding::kDelta);
  absl::MutexLock learner_lock(&learner_state_.mu);
  EXPECT_EQ(learner_state_.lease_requests.back().weight_version(), 3);
}

TEST_F(ActorTest, ShutdownDrainsThenReportsUnfinishedLeases) {
  HoldingPolicy policy;
  Queue(Lease("slow"));
  Actor actor(Options(), RpcConfig{}, {.policy = &policy, .tokenizer = tokenizer_.get()});
  ASSERT_TRUE(actor.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return policy.pending() == 1; }));
  std::thread shutdown([&] { actor.Shutdown(absl::Milliseconds(200)); });
  // The drain passes; the tree is cancelled and ends when its expansion comes back.
  absl::SleepFor(absl::Milliseconds(400));
  policy.Answer({Sample("abc\n", false), Sample("abc\n", false)});
  shutdown.join();
  absl::MutexLock lock(&learner_state_.mu);
  ASSERT_EQ(learner_state_.failures.size(), 1u);
  EXPECT_EQ(learner_state_.failures[0].lease_id(), "slow");
  EXPECT_THAT(learner_state_.failures[0].reason(), HasSubstr("shut down"));
}

}  // namespace
}  // namespace deepsearch
