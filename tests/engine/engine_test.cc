// The inference engine against one-by-one generation, with and without its prefix cache,
// under memory pressure, across weight swaps, with concurrent submitters.
#include "engine/engine.h"

#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/model/generator.h"

namespace deepsearch {
namespace {

using ::testing::HasSubstr;

Qwen2Config Config() {
  Qwen2Config c;
  c.vocab_size = 40;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.tie_word_embeddings = true;
  c.max_position_embeddings = 512;
  c.initializer_range = 0.5;  // peaked distributions, varied samples
  return c;
}

std::unique_ptr<Qwen2Model> Model(uint64_t seed) {
  auto model = *Qwen2Model::Create(Config(), {});
  model->InitializeRandom(seed);
  return model;
}

// A registry per test binary, so engines do not share the process-wide counters.
MetricsRegistry& metrics() {
  static auto* m = new MetricsRegistry();
  return *m;
}

std::unique_ptr<InferenceEngine> Engine(uint64_t seed, EngineOptions options = {},
                                        int64_t version = 1) {
  options.metrics = &metrics();
  auto engine = InferenceEngine::Create(Model(seed), version, std::move(options));
  EXPECT_TRUE(engine.ok()) << engine.status();
  return std::move(*engine);
}

ExpansionRequest Request(std::vector<int32_t> prefix, int32_t n, int32_t max_tokens,
                         uint64_t seed) {
  ExpansionRequest r;
  r.tokens = std::move(prefix);
  r.num_samples = n;
  r.sampling.max_new_tokens = max_tokens;
  r.sampling.seed = seed;
  r.sampling.top_p = 0.95f;
  return r;
}

void ExpectSameSamples(const ExpansionResult& a, const ExpansionResult& b,
                       const std::string& what) {
  ASSERT_TRUE(a.status.ok()) << what << ": " << a.status;
  ASSERT_TRUE(b.status.ok()) << what << ": " << b.status;
  ASSERT_EQ(a.samples.size(), b.samples.size()) << what;
  for (size_t j = 0; j < a.samples.size(); ++j) {
    EXPECT_EQ(a.samples[j].tokens, b.samples[j].tokens) << what << " sample " << j;
    EXPECT_EQ(a.samples[j].finish, b.samples[j].finish) << what << " sample " << j;
    ASSERT_EQ(a.samples[j].logprobs.size(), b.samples[j].logprobs.size());
    for (size_t t = 0; t < a.samples[j].logprobs.size(); ++t) {
      EXPECT_FLOAT_EQ(a.samples[j].logprobs[t], b.samples[j].logprobs[t])
          << what << " sample " << j << " token " << t;
    }
  }
}

// Submits every request from its own thread at once, and returns the results in order.
std::vector<ExpansionResult> ExpandConcurrently(InferenceEngine& engine,
                                                const std::vector<ExpansionRequest>& requests) {
  std::vector<ExpansionResult> results(requests.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < requests.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = engine.Expand(requests[i]); });
  }
  for (auto& t : threads) t.join();
  return results;
}

// What the one-by-one generator samples for `request` (weight version 1, no handles).
ExpansionResult GeneratedAlone(Generator& generator, const ExpansionRequest& request) {
  GenerationRequest g{request.tokens, request.num_samples, request.sampling};
  auto alone = generator.Generate({&g, 1});
  EXPECT_TRUE(alone.ok());
  ExpansionResult expected;
  if (!alone.ok()) return expected;
  for (const GeneratedSample& s : (*alone)[0]) {
    expected.samples.push_back({s.tokens, s.logprobs, s.entropies, s.finish, 1, 0});
  }
  return expected;
}

TEST(EngineTest, ConcurrentRequestsEqualOneByOneGeneration) {
  auto engine = Engine(7);
  auto reference = Model(7);
  Generator generator(*reference, {});
  std::vector<ExpansionRequest> requests = {
      Request({1, 2, 3}, 3, 12, 11), Request({9, 8, 7, 6, 5, 4, 3, 2, 1, 0}, 2, 20, 12),
      Request({30}, 4, 6, 13), Request({5, 5, 5, 5, 5}, 1, 25, 14)};
  const std::vector<ExpansionResult> results = ExpandConcurrently(*engine, requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    ExpectSameSamples(results[i], GeneratedAlone(generator, requests[i]),
                      "request " + std::to_string(i));
    EXPECT_EQ(results[i].prefix_length, static_cast<int64_t>(requests[i].tokens.size()));
    for (const PolicySample& s : results[i].samples) {
      EXPECT_EQ(s.weight_version, 1);
      EXPECT_NE(s.handle, 0);
    }
  }
  EXPECT_EQ(engine->stats().requests_done, 4);
}

// A 150-token prefix under a 16-token step budget is prefilled in chunks, beside requests
// that decode meanwhile; every sample equals generation alone, and no step exceeds the
// budget (tokens computed <= steps x 16).
TEST(EngineTest, ChunkedPrefillUnderAStepBudgetEqualsOneByOneGeneration) {
  EngineOptions options;
  options.max_step_tokens = 16;
  options.max_batch = 8;
  auto engine = Engine(5, options);
  auto reference = Model(5);
  Generator generator(*reference, {});
  std::vector<int32_t> long_prefix;
  for (int32_t i = 0; i < 150; ++i) long_prefix.push_back((i * 7 + 3) % 40);
  std::vector<ExpansionRequest> requests = {Request(long_prefix, 2, 8, 21),
                                            Request({4, 2}, 3, 30, 22)};
  const std::vector<ExpansionResult> results = ExpandConcurrently(*engine, requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    ExpectSameSamples(results[i], GeneratedAlone(generator, requests[i]),
                      "request " + std::to_string(i));
  }
  const EngineStats stats = engine->stats();
  EXPECT_GE(stats.prefill_tokens, 150);
  EXPECT_GE(stats.steps, 150 / 16);  // the long prefill alone takes 10 steps
  EXPECT_LE(stats.tokens_computed, stats.steps * 16);
}

// A tree: a root expansion, then every sample expanded again by its handle, twice.
std::vector<ExpansionResult> Tree(InferenceEngine& engine) {
  std::vector<ExpansionResult> out;
  ExpansionResult root = engine.Expand(Request({3, 1, 4, 1, 5, 9, 2, 6}, 3, 10, 1));
  out.push_back(root);
  std::vector<int64_t> frontier;
  for (const PolicySample& s : root.samples) frontier.push_back(s.handle);
  for (int depth = 0; depth < 2; ++depth) {
    std::vector<int64_t> next;
    for (size_t i = 0; i < frontier.size(); ++i) {
      ExpansionRequest r = Request({}, 2, 9, 100 * depth + i);
      r.prefix_handle = frontier[i];
      ExpansionResult result = engine.Expand(r);
      for (const PolicySample& s : result.samples) next.push_back(s.handle);
      out.push_back(std::move(result));
    }
    frontier = next;
  }
  return out;
}

TEST(EngineTest, SamplesAreIdenticalWithTheCacheOnOffAndUnderEvictionPressure) {
  auto cached = Engine(3);
  EngineOptions off;
  off.prefix_cache = false;
  auto uncached = Engine(3, off);
  EngineOptions tight;
  // 12 blocks: less than the tree's working set, so entries are evicted as it grows.
  const KvCache probe = Model(3)->NewCache(1, 1);
  tight.kv_budget_bytes = 12 * probe.BytesPerBlock();
  auto pressured = Engine(3, tight);

  const std::vector<ExpansionResult> a = Tree(*cached), b = Tree(*uncached), c = Tree(*pressured);
  ASSERT_EQ(a.size(), 1u + 3 + 6);
  for (size_t i = 0; i < a.size(); ++i) {
    ExpectSameSamples(a[i], b[i], "cache off, expansion " + std::to_string(i));
    ExpectSameSamples(a[i], c[i], "eviction pressure, expansion " + std::to_string(i));
  }
  const EngineStats on = cached->stats(), none = uncached->stats(),
                    tight_stats = pressured->stats();
  EXPECT_GT(on.tokens_reused, 0);
  EXPECT_EQ(none.tokens_reused, 0);
  EXPECT_LT(on.tokens_computed, none.tokens_computed);
  // With the cache, expanding a child computes only the child's last token before sampling.
  EXPECT_EQ(on.prefill_tokens, 8 + 3 * 1 + 6 * 1);
  EXPECT_GT(tight_stats.evictions, 0);
  EXPECT_LE(tight_stats.kv_bytes_in_use, tight.kv_budget_bytes);
  EXPECT_LE(tight_stats.kv_bytes_budget, tight.kv_budget_bytes);
}

TEST(EngineTest, PreemptionUnderAFullPoolGivesTheSameSamples) {
  const KvCache probe = Model(5)->NewCache(1, 1);
  EngineOptions tight;
  tight.kv_budget_bytes = 6 * probe.BytesPerBlock();  // less than the requests need together
  tight.prefix_cache = false;
  auto engine = Engine(5, tight);
  auto roomy = Engine(5);
  std::vector<ExpansionRequest> requests;
  for (int i = 0; i < 4; ++i)
    requests.push_back(Request({static_cast<int32_t>(i + 1), 7, 7}, 2, 20, i));
  std::vector<ExpansionResult> got(requests.size());
  std::atomic<int> left{static_cast<int>(requests.size())};
  for (size_t i = 0; i < requests.size(); ++i) {
    engine->Submit(requests[i], [&, i](ExpansionResult r) {
      got[i] = std::move(r);
      --left;
    });
  }
  engine->WaitIdle();
  EXPECT_EQ(left.load(), 0);
  for (size_t i = 0; i < requests.size(); ++i) {
    ExpectSameSamples(got[i], roomy->Expand(requests[i]), "request " + std::to_string(i));
  }
  EXPECT_GT(engine->stats().preemptions, 0);
  EXPECT_LE(engine->stats().kv_bytes_in_use, tight.kv_budget_bytes);
}

TEST(EngineTest, ARequestTooLargeForTheBudgetFailsAndTheEngineGoesOn) {
  const KvCache probe = Model(5)->NewCache(1, 1);
  EngineOptions tight;
  tight.kv_budget_bytes = 4 * probe.BytesPerBlock();  // 64 positions
  auto engine = Engine(5, tight);
  ExpansionResult big = engine->Expand(Request(std::vector<int32_t>(60, 2), 1, 30, 1));
  EXPECT_EQ(big.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(big.status.message()), HasSubstr("cannot hold this request"));
  EXPECT_TRUE(engine->Expand(Request({1, 2}, 2, 5, 1)).status.ok());
}

TEST(EngineTest, KvIsNeverReusedAcrossWeightVersions) {
  auto engine = Engine(1);
  const ExpansionRequest request = Request({2, 7, 1, 8, 2, 8, 1, 8}, 2, 8, 5);
  ExpansionResult v1 = engine->Expand(request);
  ASSERT_TRUE(v1.status.ok());
  ExpansionRequest child = Request({}, 2, 8, 6);
  child.prefix_handle = v1.samples[0].handle;
  ASSERT_TRUE(engine->Expand(child).status.ok());
  const int64_t reused_v1 = engine->stats().tokens_reused;
  EXPECT_GT(reused_v1, 0);
  EXPECT_GT(engine->stats().cache_bytes_held, 0);

  ASSERT_TRUE(engine->SwapWeights(Model(2), 2).ok());
  EXPECT_EQ(engine->weight_version(), 2);
  // The same prefix again: nothing of version 1 is reused, and the samples are version 2's.
  ExpansionResult v2 = engine->Expand(request);
  EXPECT_EQ(engine->stats().tokens_reused, reused_v1);
  // Version 1's cached blocks were released once nothing ran on it: the engine holds exactly
  // what an engine that only ever had version 2 holds after the same request.
  // (Statistics are published by the engine's loop: give it a moment to settle.)
  auto only_v2 = Engine(2, {}, 2);
  ASSERT_TRUE(only_v2->Expand(request).status.ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (engine->stats().cache_bytes_held != only_v2->stats().cache_bytes_held &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(engine->stats().cache_bytes_held, only_v2->stats().cache_bytes_held);
  // (The child's prefix starts with the prompt version 2 has just cached: that is reused.)
  ExpansionResult v2_child = engine->Expand(child);
  EXPECT_EQ(engine->stats().tokens_reused, reused_v1 + 8);
  auto fresh = Engine(2, {}, 2);
  ExpectSameSamples(v2, fresh->Expand(request), "after the swap");
  ExpectSameSamples(v2_child, fresh->Expand([&] {
    ExpansionRequest r = child;
    r.prefix_handle = 0;
    r.tokens = request.tokens;
    r.tokens.insert(r.tokens.end(), v1.samples[0].tokens.begin(), v1.samples[0].tokens.end());
    return r;
  }()),
                    "child after the swap");
  for (const PolicySample& s : v2.samples) EXPECT_EQ(s.weight_version, 2);
  EXPECT_EQ(engine->stats().weight_version, 2);
  // Versions only move forward; architectures must match.
  EXPECT_FALSE(engine->SwapWeights(Model(3), 2).ok());
  Qwen2Config other = Config();
  other.num_hidden_layers = 3;
  EXPECT_THAT(std::string(engine->SwapWeights(*Qwen2Model::Create(other, {}), 3).message()),
              HasSubstr("different architecture: num_hidden_layers 2 vs 3"));
  // So must the dtype the engine computes in.
  EXPECT_THAT(
      std::string(engine->SwapWeights(*Qwen2Model::Create(Config(), {.dtype = at::kBFloat16}), 3)
                      .message()),
      HasSubstr("the new model is BFloat16 on cpu, the engine runs Float on cpu"));
}

ExpansionResult RunAcrossSwap(SwapPolicy policy) {
  EngineOptions options;
  options.swap_policy = policy;
  auto engine = Engine(1, options);
  ExpansionRequest request = Request({1, 2, 3}, 2, 200, 9);
  ExpansionResult result;
  std::atomic<bool> done{false};
  engine->Submit(request, [&](ExpansionResult r) {
    result = std::move(r);
    done = true;
  });
  while (engine->stats().tokens_sampled == 0) std::this_thread::yield();  // in flight now
  EXPECT_TRUE(engine->SwapWeights(Model(2), 2).ok());
  engine->WaitIdle();
  EXPECT_TRUE(done.load());
  return result;
}

TEST(EngineTest, SwapPoliciesFinishOnOldWeightsOrRestartOnNewOnes) {
  const ExpansionRequest request = Request({1, 2, 3}, 2, 200, 9);
  const ExpansionResult finished = RunAcrossSwap(SwapPolicy::kFinishInFlight);
  ExpectSameSamples(finished, Engine(1)->Expand(request), "finish in flight");
  for (const PolicySample& s : finished.samples) EXPECT_EQ(s.weight_version, 1);
  const ExpansionResult restarted = RunAcrossSwap(SwapPolicy::kAbortInFlight);
  ExpectSameSamples(restarted, Engine(2, {}, 2)->Expand(request), "abort and requeue");
  for (const PolicySample& s : restarted.samples) EXPECT_EQ(s.weight_version, 2);
}

TEST(EngineTest, MinimumWeightVersionWaitsForNewerWeights) {
  auto engine = Engine(1);
  ExpansionRequest request = Request({4, 4}, 1, 4, 3);
  request.min_weight_version = 2;
  std::atomic<bool> done{false};
  ExpansionResult result;
  engine->Submit(request, [&](ExpansionResult r) {
    result = std::move(r);
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(done.load());
  ASSERT_TRUE(engine->SwapWeights(Model(2), 2).ok());
  engine->WaitIdle();
  ASSERT_TRUE(done.load());
  ASSERT_TRUE(result.status.ok());
  EXPECT_EQ(result.samples[0].weight_version, 2);
}

TEST(EngineTest, HandlesNameTheirTokensUntilReleased) {
  auto engine = Engine(4);
  ExpansionResult root = engine->Expand(Request({6, 6, 6}, 1, 5, 2));
  ASSERT_TRUE(root.status.ok());
  ExpansionRequest by_handle = Request({31, 32}, 2, 6, 8);
  by_handle.prefix_handle = root.samples[0].handle;
  ExpansionRequest by_tokens = Request({6, 6, 6}, 2, 6, 8);
  by_tokens.tokens.insert(by_tokens.tokens.end(), root.samples[0].tokens.begin(),
                          root.samples[0].tokens.end());
  by_tokens.tokens.insert(by_tokens.tokens.end(), {31, 32});
  ExpectSameSamples(engine->Expand(by_handle), engine->Expand(by_tokens), "handle vs tokens");
  engine->ReleaseHandle(root.samples[0].handle);
  EXPECT_EQ(engine->Expand(by_handle).status.code(), absl::StatusCode::kNotFound);
}

TEST(EngineTest, RejectsBadRequestsWithClearErrors) {
  auto engine = Engine(4);
  auto error = [&](ExpansionRequest r) {
    return std::string(engine->Expand(std::move(r)).status.message());
  };
  EXPECT_THAT(error(Request({}, 1, 4, 0)), HasSubstr("empty prefix"));
  EXPECT_THAT(error(Request({1, 40}, 1, 4, 0)), HasSubstr("prefix token 40 out of range"));
  EXPECT_THAT(error(Request({1}, 0, 4, 0)), HasSubstr("num_samples must be in [1, 256]"));
  EXPECT_THAT(error(Request({1}, 1, 600, 0)), HasSubstr("exceeds the model's 512 positions"));
  ExpansionRequest hot = Request({1}, 1, 4, 0);
  hot.sampling.temperature = -1;
  EXPECT_THAT(error(hot), HasSubstr("sampling.temperature must be > 0"));
  ExpansionRequest stops = Request({1}, 1, 4, 0);
  stops.sampling.stop_strings = {"x"};
  EXPECT_THAT(error(stops), HasSubstr("stop strings need the engine's token_bytes"));
}

TEST(EngineTest, ShutdownCancelsWhatIsPending) {
  std::atomic<int> cancelled{0};
  {
    auto engine = Engine(4);
    for (int i = 0; i < 8; ++i) {
      engine->Submit(Request({1, 2}, 4, 400 - 2, i), [&](ExpansionResult r) {
        if (r.status.code() == absl::StatusCode::kCancelled) ++cancelled;
      });
    }
  }
  EXPECT_GT(cancelled.load(), 0);
}

}  // namespace
}  // namespace deepsearch
