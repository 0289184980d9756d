// Role-scoped credentials (common/rpc/auth.h): every method of the deepsearch.v1 services
// against every role, on a real gRPC server on 127.0.0.1 whose generic handler runs the same
// ServerAuth::Check the services run; token files with several tokens and their rotation;
// the shared and the anonymous modes; per-caller stream slots.
#include "common/rpc/auth.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "deepsearch/v1/cache_service.grpc.pb.h"
#include "deepsearch/v1/learner_service.grpc.pb.h"
#include "deepsearch/v1/problem_service.grpc.pb.h"

#include "common/rpc/channel.h"
#include "common/rpc/stream_limiter.h"
#include "tests/rpc/role_tokens.h"

namespace deepsearch::rpc {
namespace {

using ::testing::HasSubstr;

// The policy, written out independently of MethodRoleTable: which roles may call what.
const std::map<std::string, std::set<std::string>>& ExpectedPolicy() {
  static const auto* policy = new std::map<std::string, std::set<std::string>>{
      {"deepsearch.v1.LearnerService/LeaseWork", {"actor"}},
      {"deepsearch.v1.LearnerService/RenewLease", {"actor"}},
      {"deepsearch.v1.LearnerService/StreamTrajectories", {"actor"}},
      {"deepsearch.v1.ProblemService/SubmitProblemSet", {"client", "admin"}},
      {"deepsearch.v1.ProblemService/GetJob", {"client", "admin"}},
      {"deepsearch.v1.ProblemService/ListJobs", {"client", "admin"}},
      {"deepsearch.v1.ProblemService/CancelJob", {"client", "admin"}},
      {"deepsearch.v1.ProblemService/WatchJob", {"client", "admin"}},
      {"deepsearch.v1.CacheService/PutSolutions", {"actor"}},
      {"deepsearch.v1.CacheService/LookupSolutions", {"actor", "learner", "client", "admin"}},
      {"deepsearch.v1.CacheService/GetCacheStats", {"actor", "learner", "client", "admin"}},
      {"deepsearch.v1.CacheService/PublishWeights", {"learner"}},
      {"deepsearch.v1.CacheService/SubscribeWeights", {"actor", "learner", "admin"}},
      {"deepsearch.v1.CacheService/GetWeights", {"actor", "learner", "client", "admin"}},
  };
  return *policy;
}

// Every method of the three services, from their descriptors: a method added to a .proto
// without a row in the table fails below.
std::vector<std::string> ServiceMethods() {
  std::vector<std::string> methods;
  const google::protobuf::DescriptorPool* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const char* name : {"deepsearch.v1.LearnerService", "deepsearch.v1.ProblemService",
                           "deepsearch.v1.CacheService"}) {
    const google::protobuf::ServiceDescriptor* service = pool->FindServiceByName(name);
    EXPECT_NE(service, nullptr) << name;
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      methods.push_back(absl::StrCat(service->full_name(), "/", service->method(i)->name()));
    }
  }
  return methods;
}

// Answers every call with its auth verdict: the refusal, or FAILED_PRECONDITION "admitted as
// <role>@<host>" when the check passes.
class AuthEchoService final : public grpc::CallbackGenericService {
 public:
  explicit AuthEchoService(ServerAuth auth) : auth_(std::move(auth)) {}

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    class Reactor final : public grpc::ServerGenericBidiReactor {
     public:
      explicit Reactor(grpc::Status s) { Finish(s); }
      void OnDone() override { delete this; }
    };
    std::string method = ctx->method();
    if (!method.empty() && method.front() == '/') method.erase(0, 1);
    Caller caller;
    grpc::Status s = auth_.Check(*ctx, method, &caller);
    if (s.ok()) {
      s = grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "admitted as " + caller.key());
    }
    return new Reactor(s);
  }

 private:
  ServerAuth auth_;
};

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  AuthConfig RoleConfig() { return testing_rpc::WriteRoleTokens(dir_.string()); }

  void Start(ServerAuth auth) {
    service_ = std::make_unique<AuthEchoService>(std::move(auth));
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterCallbackGenericService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    address_ = absl::StrCat("127.0.0.1:", port);
  }

  // A client whose own token is `token` (a file, so that it can be rotated); "" for none.
  RpcClient Client(const std::string& token, absl::Duration reload = absl::Seconds(10)) {
    RpcConfig config;
    config.auth.token_env = "";
    config.auth.reload_interval = reload;
    if (!token.empty()) config.auth.token_file = Write("own-" + token, token + "\n");
    absl::StatusOr<RpcClient> client = RpcClient::Connect(address_, config);
    EXPECT_TRUE(client.ok()) << client.status();
    return std::move(*client);
  }

  static grpc::Status Call(const RpcClient& client, const std::string& method) {
    grpc::GenericStub stub(client.channel());
    grpc::ClientContext context;
    client.PrepareContext(context, absl::Seconds(10));
    grpc::CompletionQueue cq;
    grpc::ByteBuffer request, response;
    auto call = stub.PrepareUnaryCall(&context, "/" + method, request, &cq);
    call->StartCall();
    grpc::Status status;
    call->Finish(&response, &status, reinterpret_cast<void*>(1));
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
    return status;
  }

  std::filesystem::path dir_;
  std::unique_ptr<AuthEchoService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

TEST_F(AuthTest, TheTableCoversEveryMethodWithThePolicy) {
  std::set<std::string> listed;
  for (const MethodRoles& m : MethodRoleTable()) listed.insert(std::string(m.method));
  for (const std::string& method : ServiceMethods()) {
    ASSERT_TRUE(ExpectedPolicy().count(method)) << method << " has no expected roles here";
    EXPECT_TRUE(listed.count(method)) << method << " is missing from MethodRoleTable";
    for (Role role : kAllRoles) {
      EXPECT_EQ(AllowedRoles(method).Has(role),
                ExpectedPolicy().at(method).count(std::string(RoleName(role))) > 0)
          << method << " x " << RoleName(role);
    }
  }
  EXPECT_EQ(listed.size(), ServiceMethods().size());
  EXPECT_TRUE(AllowedRoles("deepsearch.v1.CacheService/Unknown").empty());
  EXPECT_EQ(AllowedRoles("deepsearch.v1.CacheService/PublishWeights").ToString(), "learner");
  EXPECT_EQ(RoleSet().ToString(), "none");
}

TEST_F(AuthTest, EveryMethodTimesEveryRoleOverTheWire) {
  absl::StatusOr<ServerAuth> auth = ServerAuth::FromConfig(RoleConfig());
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE(auth->role_scoped());
  Start(*auth);
  int admitted = 0, denied = 0;
  for (Role role : kAllRoles) {
    const std::string name(RoleName(role));
    RpcClient client = Client(name + "-token");
    for (const std::string& method : ServiceMethods()) {
      const grpc::Status s = Call(client, method);
      if (ExpectedPolicy().at(method).count(name)) {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << method << " x " << name;
        EXPECT_EQ(s.error_message(), "admitted as " + name + "@127.0.0.1");
        ++admitted;
      } else {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << method << " x " << name;
        EXPECT_EQ(s.error_message(),
                  absl::StrCat(method, ": the ", name, " role may not call this method (allowed: ",
                               AllowedRoles(method).ToString(), ")"));
        ++denied;
      }
    }
  }
  EXPECT_EQ(admitted + denied, 4 * 14);
  EXPECT_EQ(admitted, 30);  // the expected policy's cells, counted by hand

  // No token, an unknown token, and a known token on a method nobody may call.
  EXPECT_EQ(Call(Client(""), "deepsearch.v1.CacheService/GetCacheStats").error_message(),
            "missing 'authorization: Bearer <token>' metadata");
  const grpc::Status unknown =
      Call(Client("actor-tokenX"), "deepsearch.v1.CacheService/GetWeights");
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(unknown.error_message(), "invalid bearer token");
  EXPECT_EQ(Call(Client("admin-token"), "deepsearch.v1.CacheService/Nope").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(AuthTest, TokensRotateWithoutARestart) {
  AuthConfig config = RoleConfig();
  config.reload_interval = absl::ZeroDuration();  // re-read on every call
  absl::StatusOr<ServerAuth> auth = ServerAuth::FromConfig(config);
  ASSERT_TRUE(auth.ok()) << auth.status();
  Start(*auth);
  const std::string method = "deepsearch.v1.LearnerService/LeaseWork";
  RpcClient old_client = Client("actor-token", absl::ZeroDuration());
  ASSERT_EQ(Call(old_client, method).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  // Step 1: the servers accept both tokens; old and new clients pass.
  Write("actor", "actor-token\nactor-token-2\n");
  RpcClient new_client = Client("actor-token-2", absl::ZeroDuration());
  EXPECT_EQ(Call(old_client, method).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Call(new_client, method).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // Step 2: the old client's file is swapped to the new token; it sends that from now on.
  Write("own-actor-token", "actor-token-2\n");
  // Step 3: the old token is dropped; nothing that still sends it gets in.
  Write("actor", "actor-token-2\n");
  EXPECT_EQ(Call(old_client, method).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  RpcConfig stale;
  stale.auth.token_env = "DEEPSEARCH_TEST_STALE_TOKEN";
  ::setenv("DEEPSEARCH_TEST_STALE_TOKEN", "actor-token", 1);
  absl::StatusOr<RpcClient> stale_client = RpcClient::Connect(address_, stale);
  ASSERT_TRUE(stale_client.ok());
  EXPECT_EQ(Call(*stale_client, method).error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // A file that vanishes (a Secret mid-swap) keeps the tokens read last.
  std::filesystem::remove(dir_ / "actor");
  EXPECT_EQ(Call(new_client, method).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(AuthTest, ATokenReadOnceIsKeptUntilTheReloadInterval) {
  const std::string path = Write("tokens", "a\n\n  b  \n");
  absl::StatusOr<std::shared_ptr<TokenFile>> file = TokenFile::Open("k", path, absl::Hours(1));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->Tokens(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ((*file)->First(), "a");
  EXPECT_TRUE((*file)->Matches("b"));
  EXPECT_FALSE((*file)->Matches("c"));
  Write("tokens", "c\n");
  EXPECT_FALSE((*file)->Matches("c"));  // not re-read within the hour
}

TEST_F(AuthTest, BadTokenFilesAreNamedAtStartUp) {
  AuthConfig missing;
  missing.client_tokens_file = (dir_ / "absent").string();
  absl::Status s = ServerAuth::FromConfig(missing).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(),
            "rpc.auth.client_tokens_file " + missing.client_tokens_file + ": cannot open");
  AuthConfig empty;
  empty.admin_tokens_file = Write("empty", "\n  \n");
  s = ServerAuth::FromConfig(empty).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("rpc.auth.admin_tokens_file"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("holds no token"));
}

TEST_F(AuthTest, SharedAndAnonymousModes) {
  AuthConfig shared;
  shared.token_env = "";
  shared.token_file = Write("shared", "s3cret\n");
  absl::StatusOr<ServerAuth> auth = ServerAuth::FromConfig(shared);
  ASSERT_TRUE(auth.ok());
  EXPECT_TRUE(auth->enabled());
  EXPECT_FALSE(auth->role_scoped());
  Start(*auth);
  // The shared token's holder may call everything, as before roles existed.
  for (const std::string& method : ServiceMethods()) {
    EXPECT_EQ(Call(Client("s3cret"), method).error_message(), "admitted as shared@127.0.0.1");
  }
  EXPECT_EQ(Call(Client("other"), "deepsearch.v1.CacheService/GetWeights").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  server_->Shutdown();

  AuthConfig none;
  none.token_env = "DEEPSEARCH_TEST_UNSET_TOKEN";
  auth = ServerAuth::FromConfig(none);
  ASSERT_TRUE(auth.ok());
  EXPECT_FALSE(auth->enabled());
  Start(*auth);
  EXPECT_EQ(Call(Client(""), "deepsearch.v1.CacheService/PublishWeights").error_message(),
            "admitted as anonymous@127.0.0.1");
}

TEST(PeerHostTest, StripsSchemeAndPort) {
  EXPECT_EQ(PeerHost("ipv4:127.0.0.1:5000"), "127.0.0.1");
  EXPECT_EQ(PeerHost("ipv6:[::1]:5000"), "::1");
  EXPECT_EQ(PeerHost("unix:/tmp/sock"), "/tmp/sock");
}

TEST(StreamLimiterTest, CountsPerKeyAndNamesTheLimit) {
  StreamLimiter limiter(2, "rpc.max_streams_per_caller", "caller", "streams");
  absl::StatusOr<StreamLimiter::Slot> a = limiter.Acquire("actor@h");
  absl::StatusOr<StreamLimiter::Slot> b = limiter.Acquire("actor@h");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(limiter.held("actor@h"), 2);
  absl::StatusOr<StreamLimiter::Slot> c = limiter.Acquire("actor@h");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(c.status().message(),
            "caller actor@h has 2 streams open; at most 2 (rpc.max_streams_per_caller)");
  EXPECT_TRUE(limiter.Acquire("client@h").ok());  // other callers are counted apart
  { StreamLimiter::Slot moved = std::move(*a); }  // a moved slot is released once
  EXPECT_EQ(limiter.held("actor@h"), 1);
  EXPECT_TRUE(limiter.Acquire("actor@h").ok());
  StreamLimiter unlimited(0, "k", "o", "t");
  std::vector<StreamLimiter::Slot> many;
  for (int i = 0; i < 100; ++i) many.push_back(*unlimited.Acquire("x"));
  EXPECT_EQ(unlimited.held("x"), 100);
}

}  // namespace
}  // namespace deepsearch::rpc
