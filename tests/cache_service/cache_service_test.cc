// CacheService over real gRPC on 127.0.0.1: solutions put and looked up, publish/subscribe
// ordering, a late subscriber, deltas, a slow subscriber that blocks nobody, corrupted and
// truncated publishes that leave nothing visible, authentication, and — against the real
// `deepsearch cache` binary — acknowledged writes that survive kill -9.
#include "cache_service/cache_service.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "wire/convert.h"

#include "common/core/hash.h"
#include "common/rpc/weight_stream.h"
#include "common/tasks/task.h"
#include "common/weights/weight_file.h"
#include "tests/cache_service/weight_testing.h"
#include "tests/rpc/role_tokens.h"

namespace deepsearch {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Scratch(const std::string& name) {
  const std::string dir =
      absl::StrCat(::testing::TempDir(), "/cache_service_", ::getpid(), "_", name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// `small_window`: a client that buffers at most 64 KiB per stream (no BDP-driven growth of
// its flow-control window), so a subscriber that does not read holds the server back at once.
std::unique_ptr<v1::CacheService::Stub> Connect(const std::string& address,
                                                bool small_window = false) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  if (small_window) {
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 64 << 10);
    args.SetInt("deepsearch.test.connection", 1);  // its own connection
  }
  return v1::CacheService::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
}

grpc::Status Publish(v1::CacheService::Stub& stub, const EncodedWeights& weights,
                     size_t chunk_bytes = 256 << 10) {
  grpc::ClientContext context;
  v1::PublishWeightsResponse response;
  auto writer = stub.PublishWeights(&context, &response);
  rpc::WriteWeightChunks(weights, chunk_bytes,
                         [&](const v1::WeightChunk& c) { return writer->Write(c); });
  writer->WritesDone();
  return writer->Finish();
}

// A correct solution of a generated Countdown problem, as an actor sends it.
v1::Solution SolutionOf(uint64_t seed) {
  auto family = *MakeTaskFamily("countdown:n=4,max=25");
  Rng rng(seed);
  v1::Solution s;
  const Problem p = family->Generate(rng);
  *s.mutable_problem() = ProblemToProto(p);
  s.set_response_text(*family->Solve(p));
  s.add_response_tokens(static_cast<int32_t>(seed));
  s.set_weight_version(3);
  return s;
}

// A subscriber on its own thread: decodes each version against the one it holds and records
// it. Stop() cancels the stream.
class Subscriber {
 public:
  struct How {
    bool accept_delta = false;
    bool accept_file = false;
    bool slow = false;  // reads nothing until Release()
  };
  Subscriber(v1::CacheService::Stub* stub, int64_t have, How how) : slow_(how.slow) {
    v1::SubscribeWeightsRequest request;
    request.set_subscriber_id("test");
    request.set_have_version(have);
    request.set_accept_delta(how.accept_delta);
    request.set_accept_file(how.accept_file);
    reader_ = stub->SubscribeWeights(&context_, request);
    thread_ = std::thread([this] { Run(); });
  }
  ~Subscriber() { Stop(); }

  void Stop() {
    if (!thread_.joinable()) return;
    context_.TryCancel();
    Release();
    thread_.join();
  }
  // A slow subscriber reads nothing until released.
  void Release() {
    absl::MutexLock lock(&mu_);
    slow_ = false;
  }
  // Waits until `version` arrived (or 60 s passed).
  bool WaitFor(int64_t version) {
    absl::MutexLock lock(&mu_);
    auto arrived = [&] { return !sets_.empty() && sets_.back().version >= version; };
    return mu_.AwaitWithTimeout(absl::Condition(&arrived), absl::Seconds(60));
  }
  std::vector<WeightSet> sets() {
    absl::MutexLock lock(&mu_);
    return sets_;
  }
  std::vector<WeightEncoding> encodings() {
    absl::MutexLock lock(&mu_);
    return encodings_;
  }

 private:
  void Run() {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](bool* slow) { return !*slow; }, &slow_));
    }
    rpc::WeightChunkAssembler assembler(1ull << 32);
    v1::WeightChunk chunk;
    while (reader_->Read(&chunk)) {
      ASSERT_TRUE(assembler.Add(chunk).ok());
      if (!assembler.complete()) continue;
      EncodedWeights encoded = assembler.Take();
      absl::MutexLock lock(&mu_);
      encodings_.push_back(encoded.encoding);
      const WeightSet* base = sets_.empty() ? nullptr : &sets_.back();
      absl::StatusOr<WeightSet> set = DecodeWeights(std::move(encoded), base);
      ASSERT_TRUE(set.ok()) << set.status();
      sets_.push_back(*std::move(set));
    }
  }

  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::WeightChunk>> reader_;
  std::thread thread_;
  absl::Mutex mu_;
  bool slow_ ABSL_GUARDED_BY(mu_);
  std::vector<WeightSet> sets_ ABSL_GUARDED_BY(mu_);
  std::vector<WeightEncoding> encodings_ ABSL_GUARDED_BY(mu_);
};

class CacheServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(rpc::ServerAuth()); }
  void TearDown() override { StopServer(); }

  void StartServer(rpc::ServerAuth auth, rpc::StreamLimiter* streams = nullptr) {
    dir_ = Scratch(::testing::UnitTest::GetInstance()->current_test_info()->name());
    solutions_ = *SolutionStore::Open(dir_ + "/solutions.db");
    weights_ = *WeightStore::Open({.dir = dir_ + "/weights", .keep_versions = 3});
    options_.chunk_bytes = 256 << 10;
    service_ = std::make_unique<CacheServiceImpl>(solutions_.get(), weights_.get(), options_,
                                                  std::move(auth), streams);
    server_ = *rpc::GrpcServer::Start({.name = "cache", .listen_address = "127.0.0.1:0", .rpc = {}},
                                      {{service_.get(), "deepsearch.v1.CacheService"}});
    stub_ = Connect(server_->dial_address());
  }
  void StopServer() {
    if (server_ == nullptr) return;
    weights_->Close();
    server_->Shutdown(absl::Seconds(1));
    server_.reset();
  }
  v1::CacheStats Stats() {
    grpc::ClientContext context;
    v1::CacheStats stats;
    EXPECT_TRUE(stub_->GetCacheStats(&context, {}, &stats).ok());
    return stats;
  }

  std::string dir_;
  CacheOptions options_;
  std::unique_ptr<SolutionStore> solutions_;
  std::unique_ptr<WeightStore> weights_;
  std::unique_ptr<CacheServiceImpl> service_;
  std::unique_ptr<rpc::GrpcServer> server_;
  std::unique_ptr<v1::CacheService::Stub> stub_;
};

TEST_F(CacheServiceTest, PutVerifiesDedupesAndLookupFinds) {
  v1::PutSolutionsRequest put;
  *put.add_solutions() = SolutionOf(1);
  *put.add_solutions() = SolutionOf(1);
  v1::Solution wrong = SolutionOf(2);
  wrong.set_response_text("I give up. \\boxed{7}");
  *put.add_solutions() = wrong;
  grpc::ClientContext context;
  v1::PutSolutionsResponse response;
  ASSERT_TRUE(stub_->PutSolutions(&context, put, &response).ok());
  ASSERT_EQ(response.results_size(), 3);
  EXPECT_EQ(response.results(0).status(), v1::PutResult::STATUS_STORED);
  EXPECT_EQ(response.results(1).status(), v1::PutResult::STATUS_DUPLICATE);
  EXPECT_EQ(response.results(2).status(), v1::PutResult::STATUS_REJECTED);
  EXPECT_EQ(response.results(2).problem_id(), wrong.problem().id());
  EXPECT_THAT(response.results(2).reason(), HasSubstr("re-verification failed"));

  v1::LookupSolutionsRequest lookup;
  lookup.add_problem_ids(put.solutions(0).problem().id());
  lookup.add_problem_ids(wrong.problem().id());
  grpc::ClientContext lookup_context;
  v1::LookupSolutionsResponse found;
  ASSERT_TRUE(stub_->LookupSolutions(&lookup_context, lookup, &found).ok());
  ASSERT_EQ(found.problems_size(), 1);
  EXPECT_EQ(found.problems(0).problem_id(), put.solutions(0).problem().id());
  ASSERT_EQ(found.problems(0).solutions_size(), 1);
  const v1::StoredSolution& s = found.problems(0).solutions(0);
  EXPECT_EQ(s.response_text(), put.solutions(0).response_text());
  EXPECT_THAT(s.response_tokens(), ElementsAre(1));
  EXPECT_EQ(s.answer(), put.solutions(0).problem().answer());
  EXPECT_EQ(s.weight_version(), 3);
  EXPECT_EQ(s.duplicates(), 1);

  const v1::CacheStats stats = Stats();
  EXPECT_EQ(stats.problems(), 1);
  EXPECT_EQ(stats.solutions(), 1);
  EXPECT_EQ(stats.duplicates(), 1);
  EXPECT_EQ(stats.rejected(), 1);
  EXPECT_EQ(stats.lookups(), 2);
  EXPECT_EQ(stats.lookup_hits(), 1);
}

TEST_F(CacheServiceTest, OversizedRequestsAreRefusedWithTheLimitNamed) {
  v1::LookupSolutionsRequest lookup;
  for (int i = 0; i <= options_.max_lookup_problems; ++i) lookup.add_problem_ids("p");
  grpc::ClientContext context;
  v1::LookupSolutionsResponse found;
  const grpc::Status s = stub_->LookupSolutions(&context, lookup, &found);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("cache.max_lookup_problems"));
}

TEST_F(CacheServiceTest, SubscribersGetEveryVersionInOrderBitExact) {
  Subscriber full(stub_.get(), 0, {.accept_delta = false});
  Subscriber delta(stub_.get(), 0, {.accept_delta = true});
  for (int64_t v = 1; v <= 4; ++v) {
    ASSERT_TRUE(Publish(*stub_, EncodeFull(MakeSet(v))).ok());
    // One version at a time, so neither subscriber has a reason to skip.
    ASSERT_TRUE(full.WaitFor(v));
    ASSERT_TRUE(delta.WaitFor(v));
  }
  for (Subscriber* s : {&full, &delta}) {
    const std::vector<WeightSet> sets = s->sets();
    ASSERT_EQ(sets.size(), 4u);
    for (int64_t v = 1; v <= 4; ++v) ExpectSameSet(sets[v - 1], MakeSet(v));
  }
  EXPECT_THAT(full.encodings(), ElementsAre(WeightEncoding::kFull, WeightEncoding::kFull,
                                            WeightEncoding::kFull, WeightEncoding::kFull));
  EXPECT_THAT(delta.encodings(), ElementsAre(WeightEncoding::kFull, WeightEncoding::kDelta,
                                             WeightEncoding::kDelta, WeightEncoding::kDelta));
  EXPECT_EQ(Stats().subscribers(), 2);
}

// The same-host path: the publisher writes each version into the import directory and names
// it; a subscriber that shares the file system is named the stored file, which it maps.
TEST_F(CacheServiceTest, OnTheSameHostVersionsTravelAsFileReferencesBitExact) {
  Subscriber by_file(stub_.get(), 0, {.accept_delta = true, .accept_file = true});
  Subscriber streamed(stub_.get(), 0, {.accept_delta = false});
  for (int64_t v = 1; v <= 5; ++v) {
    const WeightSet set = MakeSet(v);
    const EncodedWeights reference =
        FileReference(set, absl::StrCat(weights_->import_dir(), "/publish-", v, ".safetensors"));
    ASSERT_TRUE(WriteWeightFile(set, reference.file_path, /*sync=*/false,
                                SpareWeightFile(weights_->import_dir()))
                    .ok());
    ASSERT_TRUE(Publish(*stub_, reference).ok());
    ASSERT_TRUE(by_file.WaitFor(v));
    ASSERT_TRUE(streamed.WaitFor(v));
  }
  for (Subscriber* s : {&by_file, &streamed}) {
    const std::vector<WeightSet> sets = s->sets();
    ASSERT_EQ(sets.size(), 5u);
    for (int64_t v = 1; v <= 5; ++v) ExpectSameSet(sets[v - 1], MakeSet(v));
  }
  EXPECT_THAT(by_file.encodings(), ::testing::Each(WeightEncoding::kFile));
  EXPECT_THAT(streamed.encodings(), ::testing::Each(WeightEncoding::kFull));
  // The mapped sets stay intact while later versions prune and reuse the files.
  EXPECT_NE(by_file.sets()[0].mapping, nullptr);
  ExpectSameSet(by_file.sets()[0], MakeSet(1));
  // Only the file references travelled to the first subscriber: no payload bytes.
  EXPECT_EQ(service_->counters().weight_bytes_sent,
            static_cast<int64_t>(5 * MakeSet(1).data().size()));
  // A reference outside the import directory is refused with the directory named.
  const EncodedWeights outside = FileReference(MakeSet(6), dir_ + "/elsewhere.safetensors");
  const grpc::Status refused = Publish(*stub_, outside);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(refused.error_message(), HasSubstr("is not in the import directory"));
  EXPECT_EQ(Stats().latest_weight_version(), 5);
}

TEST_F(CacheServiceTest, ALateSubscriberStartsAtTheNewestVersion) {
  for (int64_t v = 1; v <= 3; ++v) ASSERT_TRUE(Publish(*stub_, EncodeFull(MakeSet(v))).ok());
  Subscriber late(stub_.get(), 0, {.accept_delta = true});
  ASSERT_TRUE(late.WaitFor(3));
  ASSERT_EQ(late.sets().size(), 1u);
  ExpectSameSet(late.sets()[0], MakeSet(3));
  // A receiver that holds version 2 can have a delta against it.
  grpc::ClientContext context;
  v1::GetWeightsRequest get;
  get.set_version(3);
  get.set_base_version(2);
  auto reader = stub_->GetWeights(&context, get);
  rpc::WeightChunkAssembler assembler(1 << 30);
  v1::WeightChunk chunk;
  while (reader->Read(&chunk)) ASSERT_TRUE(assembler.Add(chunk).ok());
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_TRUE(assembler.complete());
  EncodedWeights encoded = assembler.Take();
  EXPECT_EQ(encoded.encoding, WeightEncoding::kDelta);
  const WeightSet base = MakeSet(2);
  ExpectSameSet(*DecodeWeights(std::move(encoded), &base), MakeSet(3));

  grpc::ClientContext missing_context;
  get.set_version(9);
  auto missing = stub_->GetWeights(&missing_context, get);
  while (missing->Read(&chunk)) {
  }
  const grpc::Status s = missing->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("version 9 is not kept (kept: 1, 2, 3)"));
}

TEST_F(CacheServiceTest, ASlowSubscriberBlocksNobodyAndSkipsToTheNewest) {
  constexpr int kN = 1 << 20;  // 6 MiB versions: far beyond the slow stream's 64 KiB window
  auto slow_stub = Connect(server_->dial_address(), /*small_window=*/true);
  Subscriber slow(slow_stub.get(), 0, {.accept_delta = false, .slow = true});
  Subscriber fast(stub_.get(), 0, {.accept_delta = false});
  for (int64_t v = 1; v <= 5; ++v) {
    ASSERT_TRUE(Publish(*stub_, EncodeFull(MakeSet(v, kN))).ok()) << "version " << v;
  }
  ASSERT_TRUE(fast.WaitFor(5));
  ExpectSameSet(fast.sets().back(), MakeSet(5, kN));
  slow.Release();
  ASSERT_TRUE(slow.WaitFor(5));
  const std::vector<WeightSet> got = slow.sets();
  ExpectSameSet(got.back(), MakeSet(5, kN));
  EXPECT_LT(got.size(), 5u) << "the slow subscriber should have skipped versions";
  for (size_t i = 1; i < got.size(); ++i) EXPECT_LT(got[i - 1].version, got[i].version);
}

TEST_F(CacheServiceTest, BrokenPublishesLeaveNothingVisible) {
  const EncodedWeights good = EncodeFull(MakeSet(1));
  // Data after the header at the wrong offset.
  {
    grpc::ClientContext context;
    v1::PublishWeightsResponse response;
    auto writer = stub_->PublishWeights(&context, &response);
    writer->Write(rpc::WeightHeaderChunk(good));
    v1::WeightChunk data;
    data.set_data(good.data.substr(0, 100));
    data.set_offset(50);
    writer->Write(data);
    writer->WritesDone();
    const grpc::Status s = writer->Finish();
    EXPECT_FALSE(s.ok());
    EXPECT_THAT(s.error_message(), HasSubstr("PublishWeights"));
  }
  // A flipped byte: the trailer's checksum does not match.
  {
    EncodedWeights bad = good;
    bad.data[7] ^= 1;
    const grpc::Status s = Publish(*stub_, bad);
    EXPECT_FALSE(s.ok());
    EXPECT_THAT(s.error_message(), HasSubstr("checksum"));
  }
  // The stream ends before the trailer.
  {
    grpc::ClientContext context;
    v1::PublishWeightsResponse response;
    auto writer = stub_->PublishWeights(&context, &response);
    writer->Write(rpc::WeightHeaderChunk(good));
    writer->WritesDone();
    const grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("before the trailer"));
  }
  // A header that announces more bytes than this process can hold (60 GB, under the 64 GiB
  // limit): a status naming the version, not an exception escaping the handler (UNKNOWN).
  {
    EncodedWeights huge = good;
    huge.version = 7;
    v1::WeightChunk header = rpc::WeightHeaderChunk(huge);
    header.mutable_header()->set_encoded_bytes(60'000'000'000);
    grpc::ClientContext context;
    v1::PublishWeightsResponse response;
    auto writer = stub_->PublishWeights(&context, &response);
    writer->Write(header);
    writer->WritesDone();
    const grpc::Status s = writer->Finish();
    EXPECT_NE(s.error_code(), grpc::StatusCode::UNKNOWN) << s.error_message();
    EXPECT_NE(s.error_code(), grpc::StatusCode::OK);
    EXPECT_THAT(s.error_message(), HasSubstr("version 7"));
  }
  EXPECT_EQ(Stats().latest_weight_version(), 0);
  EXPECT_TRUE(std::filesystem::is_empty(dir_ + "/weights/incoming"));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_ + "/weights"),
                          std::filesystem::directory_iterator()),
            1);  // incoming/ alone
  grpc::ClientContext context;
  auto reader = stub_->GetWeights(&context, {});
  v1::WeightChunk chunk;
  while (reader->Read(&chunk)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  // Then the intact version goes through.
  ASSERT_TRUE(Publish(*stub_, good).ok());
  EXPECT_EQ(Stats().latest_weight_version(), 1);
}

TEST_F(CacheServiceTest, CallsWithoutTheTokenAreRefused) {
  StopServer();
  StartServer(rpc::ServerAuth("s3cret"));
  grpc::ClientContext context;
  v1::CacheStats stats;
  EXPECT_EQ(stub_->GetCacheStats(&context, {}, &stats).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext with_token;
  with_token.AddMetadata("authorization", "Bearer s3cret");
  EXPECT_TRUE(stub_->GetCacheStats(&with_token, {}, &stats).ok());
}

// The real handlers with role-scoped tokens: each of the six methods called with each role's
// token is refused with PERMISSION_DENIED exactly when the role may not call it, and otherwise
// runs (its answer then is the handler's own: OK, or INVALID_ARGUMENT for the empty publish).
TEST_F(CacheServiceTest, EachMethodAcceptsExactlyItsRoles) {
  StopServer();
  const AuthConfig auth = testing_rpc::WriteRoleTokens(Scratch("role_tokens"));
  StartServer(*rpc::ServerAuth::FromConfig(auth));
  ASSERT_TRUE(weights_->Publish(EncodeFull(MakeSet(1))).ok());
  using Call = std::function<grpc::Status(grpc::ClientContext&)>;
  const std::vector<std::pair<std::string, Call>> calls = {
      {"PutSolutions",
       [&](grpc::ClientContext& c) {
         v1::PutSolutionsRequest put;
         *put.add_solutions() = SolutionOf(7);
         v1::PutSolutionsResponse r;
         return stub_->PutSolutions(&c, put, &r);
       }},
      {"LookupSolutions",
       [&](grpc::ClientContext& c) {
         v1::LookupSolutionsResponse r;
         return stub_->LookupSolutions(&c, {}, &r);
       }},
      {"GetCacheStats",
       [&](grpc::ClientContext& c) {
         v1::CacheStats r;
         return stub_->GetCacheStats(&c, {}, &r);
       }},
      {"PublishWeights",
       [&](grpc::ClientContext& c) {
         v1::PublishWeightsResponse r;
         auto writer = stub_->PublishWeights(&c, &r);
         writer->WritesDone();
         return writer->Finish();
       }},
      {"SubscribeWeights",
       [&](grpc::ClientContext& c) {
         v1::SubscribeWeightsRequest request;
         auto reader = stub_->SubscribeWeights(&c, request);
         v1::WeightChunk chunk;
         while (reader->Read(&chunk)) {
           if (chunk.has_trailer()) c.TryCancel();  // got version 1: the call ran
         }
         const grpc::Status s = reader->Finish();
         return s.error_code() == grpc::StatusCode::CANCELLED ? grpc::Status::OK : s;
       }},
      {"GetWeights",
       [&](grpc::ClientContext& c) {
         auto reader = stub_->GetWeights(&c, {});
         v1::WeightChunk chunk;
         while (reader->Read(&chunk)) {
         }
         return reader->Finish();
       }},
  };
  for (rpc::Role role : rpc::kAllRoles) {
    for (const auto& [method, call] : calls) {
      const std::string full = "deepsearch.v1.CacheService/" + method;
      grpc::ClientContext context;
      context.AddMetadata("authorization", absl::StrCat("Bearer ", rpc::RoleName(role), "-token"));
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
      const grpc::Status s = call(context);
      if (rpc::AllowedRoles(full).Has(role)) {
        EXPECT_TRUE(s.ok() || (method == "PublishWeights" &&
                               s.error_code() == grpc::StatusCode::INVALID_ARGUMENT))
            << full << " x " << rpc::RoleName(role) << ": " << s.error_message();
      } else {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << full << " x " << rpc::RoleName(role);
        EXPECT_THAT(s.error_message(), HasSubstr(full));
      }
    }
  }
}

TEST_F(CacheServiceTest, ACallerPastItsStreamLimitIsRefusedWithTheKeyNamed) {
  StopServer();
  rpc::StreamLimiter streams(1, "rpc.max_streams_per_caller", "caller", "streams");
  StartServer(rpc::ServerAuth(), &streams);
  Subscriber first(stub_.get(), 0, {});
  for (int i = 0; i < 500 && streams.held("anonymous@127.0.0.1") == 0; ++i)
    absl::SleepFor(absl::Milliseconds(10));
  ASSERT_EQ(streams.held("anonymous@127.0.0.1"), 1);
  grpc::ClientContext context;
  auto reader = stub_->GetWeights(&context, {});
  v1::WeightChunk chunk;
  EXPECT_FALSE(reader->Read(&chunk));
  const grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(
      s.error_message(),
      "caller anonymous@127.0.0.1 has 1 streams open; at most 1 (rpc.max_streams_per_caller)");
  first.Stop();
  for (int i = 0; i < 500 && streams.held("anonymous@127.0.0.1") > 0; ++i)
    absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(streams.held("anonymous@127.0.0.1"), 0);  // the slot came back with the stream
}

// The real binary: start it, put a solution and publish a version, kill -9 right after the
// acknowledgements, start it again on the same store: both are there.
class CacheProcess {
 public:
  explicit CacheProcess(std::string dir) : dir_(std::move(dir)) {}
  ~CacheProcess() { Kill(); }

  // Starts `deepsearch cache` and returns its address, or "" when it did not come up.
  std::string Start() {
    const std::string log = dir_ + "/cache.log";
    std::remove(log.c_str());
    pid_ = ::fork();
    if (pid_ == 0) {
      FILE* f = std::freopen(log.c_str(), "w", stderr);
      (void)f;
      ::execl(DEEPSEARCH_CLI_PATH, DEEPSEARCH_CLI_PATH, "cache", "--store-dir",
              (dir_ + "/store").c_str(), "--listen", "127.0.0.1:0", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 600; ++i) {
      std::ifstream in(log);
      std::stringstream text;
      text << in.rdbuf();
      const std::string s = text.str();
      constexpr std::string_view kServing = "cache: serving on ";
      const size_t at = s.find(kServing);
      if (at != std::string::npos) {
        const size_t begin = at + kServing.size();
        const size_t end = s.find(' ', begin);
        if (end != std::string::npos) return s.substr(begin, end - begin);
      }
      ::usleep(50'000);
    }
    return "";
  }
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  std::string dir_;
  pid_t pid_ = -1;
};

TEST(CacheProcessTest, AcknowledgedWritesSurviveKill9) {
  const std::string dir = Scratch("kill9");
  CacheProcess process(dir);
  const std::string address = process.Start();
  ASSERT_FALSE(address.empty()) << "the cache service did not start";
  auto stub = Connect(address);
  v1::PutSolutionsRequest put;
  *put.add_solutions() = SolutionOf(5);
  {
    grpc::ClientContext context;
    v1::PutSolutionsResponse response;
    ASSERT_TRUE(stub->PutSolutions(&context, put, &response).ok());
    ASSERT_EQ(response.results(0).status(), v1::PutResult::STATUS_STORED);
  }
  ASSERT_TRUE(Publish(*stub, EncodeFull(MakeSet(4))).ok());
  process.Kill();  // SIGKILL right after the acknowledgements

  const std::string again = process.Start();
  ASSERT_FALSE(again.empty()) << "the cache service did not restart";
  stub = Connect(again);
  grpc::ClientContext context;
  v1::LookupSolutionsRequest lookup;
  lookup.add_problem_ids(put.solutions(0).problem().id());
  v1::LookupSolutionsResponse found;
  ASSERT_TRUE(stub->LookupSolutions(&context, lookup, &found).ok());
  ASSERT_EQ(found.problems_size(), 1);
  EXPECT_EQ(found.problems(0).solutions(0).response_text(), put.solutions(0).response_text());

  grpc::ClientContext get_context;
  auto reader = stub->GetWeights(&get_context, {});
  rpc::WeightChunkAssembler assembler(1 << 30);
  v1::WeightChunk chunk;
  while (reader->Read(&chunk)) ASSERT_TRUE(assembler.Add(chunk).ok());
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_TRUE(assembler.complete());
  ExpectSameSet(*DecodeWeights(assembler.Take(), nullptr), MakeSet(4));
}

}  // namespace
}  // namespace deepsearch
