// The real actor (actor/actor.h, with a scripted policy and an in-process learner) against
// the real cache service: the solutions it verified are re-verified and stored, a second
// lease of the same problem is served from them, and every weight version published to the
// cache reaches the actor (the first in full, the next as a delta) bit-exact, or, on the
// cache's host, as mapped files.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "search/mock_policy.h"

#include "actor/actor.h"
#include "cache_service/cache_service.h"
#include "common/rpc/weight_stream.h"
#include "common/tokenizer/char_tokenizer.h"
#include "tests/actor/fake_services.h"
#include "tests/cache_service/weight_testing.h"
#include "tests/search/test_policies.h"

namespace deepsearch {
namespace {

using testing::FakeLearner;
using testing::FakeServer;
using testing::LearnerState;

// An actor of the learner and cache at these addresses, with short timers.
ActorOptions QuickOptions(const std::string& id, const std::string& learner,
                          const std::string& cache) {
  ActorOptions options;
  options.actor_id = id;
  options.learner_address = learner;
  options.cache_address = cache;
  options.renew_interval = absl::Milliseconds(50);
  options.idle_poll = absl::Milliseconds(10);
  options.backoff_initial = absl::Milliseconds(5);
  options.backoff_max = absl::Milliseconds(50);
  options.status_interval = absl::ZeroDuration();
  return options;
}

v1::Lease MathLease(const std::string& id) {
  v1::Lease l = testing::SixSevensLease(id, "p-six-sevens");
  l.set_use_solution_cache(true);
  return l;
}

TEST(ActorWithCacheTest, SolutionsAndWeightsFlowThroughTheRealCacheService) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/actor_cache_", ::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto solutions = *SolutionStore::Open(dir + "/solutions.db");
  auto weights = *WeightStore::Open({.dir = dir + "/weights"});
  CacheServiceImpl service(solutions.get(), weights.get(), CacheOptions{}, rpc::ServerAuth());
  auto server =
      *rpc::GrpcServer::Start({.name = "cache", .listen_address = "127.0.0.1:0", .rpc = {}},
                              {{&service, "deepsearch.v1.CacheService"}});
  LearnerState learner_state;
  FakeServer<FakeLearner, LearnerState> learner(&learner_state, "deepsearch.v1.LearnerService");
  ASSERT_TRUE(learner.Start().ok());

  auto tokenizer = *ParseTokenizerJson(*DefaultTaskTokenizerJson(), "task tokenizer");
  const int32_t eos = *tokenizer->TokenToId("<eos>");
  MockPolicy policy([&](absl::Span<const int32_t>, int32_t, const ExpansionRequest&) {
    PolicySample s;
    s.tokens = *tokenizer->Encode("6*7=42\n\\boxed{42}");
    s.tokens.push_back(eos);
    s.logprobs.assign(s.tokens.size(), -0.5f);
    s.finish = FinishReason::kEos;
    return s;
  });
  absl::Mutex mu;
  std::vector<WeightSet> installed;
  const ActorOptions options =
      QuickOptions("actor-with-cache", learner.address(), server->dial_address());
  Actor actor(options, RpcConfig{},
              {.policy = &policy,
               .tokenizer = tokenizer.get(),
               .install_weights = [&](const WeightSet& set) {
                 absl::MutexLock lock(&mu);
                 installed.push_back(set);
                 return absl::OkStatus();
               }});
  ASSERT_TRUE(actor.Start().ok());

  // A search lease: its correct leaves are sent to the cache, re-verified and stored once.
  {
    absl::MutexLock lock(&learner_state.mu);
    learner_state.queue.push_back(MathLease("first"));
  }
  ASSERT_TRUE(WaitFor([&] { return solutions->stats().solutions >= 1; }));
  EXPECT_EQ(solutions->stats().rejected, 0);
  auto stored = *solutions->Lookup({"p-six-sevens"}, 0);
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored.at("p-six-sevens")[0].answer, "42");
  EXPECT_EQ(stored.at("p-six-sevens")[0].response_text, "6*7=42\n\\boxed{42}");

  // The same problem again: served from the cache.
  {
    absl::MutexLock lock(&learner_state.mu);
    learner_state.queue.push_back(MathLease("second"));
  }
  ASSERT_TRUE(WaitFor([&] { return actor.stats().cached_problems == 1; }));

  // Weight versions published to the cache reach the actor.
  ASSERT_TRUE(weights->Publish(EncodeFull(MakeSet(1))).ok());
  // The actor already reports version 1 (its starting policy's), so wait for the install
  // itself: publishing version 2 before version 1 arrived would let the stream skip it.
  ASSERT_TRUE(WaitFor([&] {
    absl::MutexLock lock(&mu);
    return installed.size() == 1;
  }));
  ASSERT_TRUE(weights->Publish(EncodeFull(MakeSet(2))).ok());
  ASSERT_TRUE(WaitFor([&] { return actor.stats().weight_version == 2; }));
  actor.Shutdown(absl::Seconds(5));
  {
    absl::MutexLock lock(&mu);
    ASSERT_EQ(installed.size(), 2u);
    ExpectSameSet(installed[0], MakeSet(1));
    ExpectSameSet(installed[1], MakeSet(2));
  }
  EXPECT_EQ(weights->stats().deltas_made, 1);  // the second went out as a delta
  weights->Close();
  server->Shutdown(absl::Seconds(1));
  std::filesystem::remove_all(dir);
}

// An actor on the cache's host (actor.weights_by_file) maps the stored files it is named: no
// bytes are streamed and the cache encodes nothing.
TEST(ActorWithCacheTest, OnTheCachesHostWeightsArriveAsMappedFiles) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/actor_cache_file_", ::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto solutions = *SolutionStore::Open(dir + "/solutions.db");
  auto weights = *WeightStore::Open({.dir = dir + "/weights", .keep_versions = 1});
  CacheServiceImpl service(solutions.get(), weights.get(), CacheOptions{}, rpc::ServerAuth());
  auto server =
      *rpc::GrpcServer::Start({.name = "cache", .listen_address = "127.0.0.1:0", .rpc = {}},
                              {{&service, "deepsearch.v1.CacheService"}});
  LearnerState learner_state;
  FakeServer<FakeLearner, LearnerState> learner(&learner_state, "deepsearch.v1.LearnerService");
  ASSERT_TRUE(learner.Start().ok());
  auto tokenizer = *ParseTokenizerJson(*DefaultTaskTokenizerJson(), "task tokenizer");
  MockPolicy policy(
      [&](absl::Span<const int32_t>, int32_t, const ExpansionRequest&) { return PolicySample(); });
  absl::Mutex mu;
  std::vector<WeightSet> installed;
  ActorOptions options = QuickOptions("actor-by-file", learner.address(), server->dial_address());
  options.weights_by_file = true;
  Actor actor(options, RpcConfig{},
              {.policy = &policy,
               .tokenizer = tokenizer.get(),
               .install_weights = [&](const WeightSet& set) {
                 absl::MutexLock lock(&mu);
                 installed.push_back(set);
                 return absl::OkStatus();
               }});
  ASSERT_TRUE(actor.Start().ok());
  for (int64_t v = 1; v <= 3; ++v) {
    ASSERT_TRUE(weights->Publish(EncodeFull(MakeSet(v))).ok());
    ASSERT_TRUE(WaitFor([&] {
      absl::MutexLock lock(&mu);
      return static_cast<int64_t>(installed.size()) == v;
    }));
  }
  actor.Shutdown(absl::Seconds(5));
  {
    absl::MutexLock lock(&mu);
    ASSERT_EQ(installed.size(), 3u);
    for (int64_t v = 1; v <= 3; ++v) {
      ExpectSameSet(installed[v - 1], MakeSet(v));
      EXPECT_NE(installed[v - 1].mapping, nullptr) << "version " << v << " was not mapped";
    }
  }
  EXPECT_EQ(weights->stats().encodings_made, 0);
  EXPECT_EQ(service.counters().weight_bytes_sent, 0);
  weights->Close();
  server->Shutdown(absl::Seconds(1));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace deepsearch
