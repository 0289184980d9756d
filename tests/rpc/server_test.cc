// The shared server helper, in process on 127.0.0.1: health, reflection, bearer tokens,
// message limits, TLS and mutual TLS, and clear errors on bad settings.
#include "common/rpc/server.h"

#include <cstdlib>
#include <fstream>

#include <gmock/gmock.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "deepsearch/v1/problem_service.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

#include "common/rpc/channel.h"
#include "common/rpc/status_conversion.h"

namespace deepsearch::rpc {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

constexpr char kProblemService[] = "deepsearch.v1.ProblemService";

// A minimal ProblemService: GetJob echoes the id, SubmitProblemSet counts the problems.
// Both check the bearer token first, as every real handler does.
class FakeProblemService final : public v1::ProblemService::CallbackService {
 public:
  explicit FakeProblemService(ServerAuth auth) : auth_(std::move(auth)) {}

  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context,
                                   const v1::GetJobRequest* request, v1::Job* job) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (grpc::Status s = auth_.Check(*context, "deepsearch.v1.ProblemService/GetJob"); !s.ok()) {
      reactor->Finish(s);
      return reactor;
    }
    if (request->job_id().empty()) {
      reactor->Finish(ToGrpcStatus(absl::InvalidArgumentError("GetJob: job_id is empty")));
      return reactor;
    }
    job->set_job_id(request->job_id());
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* SubmitProblemSet(grpc::CallbackServerContext* context,
                                             const v1::SubmitProblemSetRequest* request,
                                             v1::Job* job) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (grpc::Status s = auth_.Check(*context, "deepsearch.v1.ProblemService/SubmitProblemSet");
        !s.ok()) {
      reactor->Finish(s);
      return reactor;
    }
    job->mutable_progress()->set_problems_total(request->problems_size());
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  ServerAuth auth_;
};

std::string DataPath(const std::string& relative) {
  const char* root = std::getenv("DEEPSEARCH_SOURCE_DIR");
  return std::string(root != nullptr ? root : ".") + "/tests/data/" + relative;
}

RpcConfig TlsConfig(bool mutual) {
  RpcConfig config;
  config.tls.enabled = true;
  config.tls.cert_file = DataPath("tls/server.pem");
  config.tls.key_file = DataPath("tls/server.key");
  config.tls.ca_file = DataPath("tls/ca.pem");
  config.tls.require_client_cert = mutual;
  return config;
}

struct Running {
  std::unique_ptr<FakeProblemService> service;
  std::unique_ptr<GrpcServer> server;
};

Running StartServer(const RpcConfig& config, std::string token = "") {
  Running r;
  r.service = std::make_unique<FakeProblemService>(ServerAuth(std::move(token)));
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start({.name = "test", .listen_address = "127.0.0.1:0", .rpc = config},
                        {{r.service.get(), kProblemService}});
  EXPECT_TRUE(server.ok()) << server.status();
  if (server.ok()) r.server = std::move(*server);
  return r;
}

RpcClient Connect(const Running& r, const RpcConfig& config) {
  absl::StatusOr<RpcClient> client = RpcClient::Connect(r.server->dial_address(), config);
  EXPECT_TRUE(client.ok()) << client.status();
  return std::move(*client);
}

grpc::Status Check(const RpcClient& client, const std::string& service,
                   HealthCheckResponse* response) {
  auto stub = grpc::health::v1::Health::NewStub(client.channel());
  HealthCheckRequest request;
  request.set_service(service);
  auto context = client.NewContext(absl::Seconds(10));
  return stub->Check(context.get(), request, response);
}

grpc::Status GetJob(const RpcClient& client, const std::string& job_id, v1::Job* job) {
  auto stub = v1::ProblemService::NewStub(client.channel());
  v1::GetJobRequest request;
  request.set_job_id(job_id);
  auto context = client.NewContext(absl::Seconds(10));
  return stub->GetJob(context.get(), request, job);
}

TEST(ServerTest, AnswersHealthChecksOnLoopback) {
  Running r = StartServer(RpcConfig{});
  ASSERT_NE(r.server, nullptr);
  EXPECT_GT(r.server->port(), 0);
  EXPECT_EQ(r.server->dial_address(), absl::StrCat("127.0.0.1:", r.server->port()));
  RpcClient client = Connect(r, RpcConfig{});
  ASSERT_TRUE(client.WaitForConnected(absl::Seconds(10)).ok());

  HealthCheckResponse response;
  ASSERT_TRUE(Check(client, "", &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  ASSERT_TRUE(Check(client, kProblemService, &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  EXPECT_EQ(Check(client, "no.such.Service", &response).error_code(), grpc::StatusCode::NOT_FOUND);

  r.server->SetServing(false);
  ASSERT_TRUE(Check(client, kProblemService, &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
}

TEST(ServerTest, ServesCallsAndMapsStatuses) {
  Running r = StartServer(RpcConfig{});
  RpcClient client = Connect(r, RpcConfig{});
  v1::Job job;
  ASSERT_TRUE(GetJob(client, "job-42", &job).ok());
  EXPECT_EQ(job.job_id(), "job-42");
  grpc::Status bad = GetJob(client, "", &job);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(bad.error_message(), "GetJob: job_id is empty");
}

TEST(ServerTest, BearerTokenGuardsServicesButNotHealth) {
  Running r = StartServer(RpcConfig{}, "s3cret");
  RpcClient anonymous = Connect(r, RpcConfig{});
  v1::Job job;
  grpc::Status s = GetJob(anonymous, "j", &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(s.error_message(), "missing 'authorization: Bearer <token>' metadata");
  HealthCheckResponse health;
  EXPECT_TRUE(Check(anonymous, "", &health).ok());  // probes carry no token

  const std::string token_file = ::testing::TempDir() + "/token";
  RpcConfig wrong;
  std::ofstream(token_file) << "nope\n";
  wrong.auth.token_file = token_file;
  s = GetJob(Connect(r, wrong), "j", &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(s.error_message(), "invalid bearer token");

  RpcConfig right;
  std::ofstream(token_file) << "  s3cret\n";  // surrounding whitespace is trimmed
  right.auth.token_file = token_file;
  EXPECT_TRUE(GetJob(Connect(r, right), "j", &job).ok());

  ::setenv("DEEPSEARCH_TEST_TOKEN", "s3cret", 1);
  RpcConfig from_env;
  from_env.auth.token_env = "DEEPSEARCH_TEST_TOKEN";
  EXPECT_TRUE(GetJob(Connect(r, from_env), "j", &job).ok());
}

TEST(ServerTest, MessageSizeLimitRefusesLargeRequests) {
  RpcConfig config;
  config.max_receive_message_bytes = 64 << 10;
  Running r = StartServer(config);
  RpcClient client = Connect(r, RpcConfig{});
  auto stub = v1::ProblemService::NewStub(client.channel());
  auto submit = [&](size_t prompt_bytes) {
    v1::SubmitProblemSetRequest request;
    request.add_problems()->set_prompt(std::string(prompt_bytes, 'x'));
    v1::Job job;
    auto context = client.NewContext(absl::Seconds(10));
    return stub->SubmitProblemSet(context.get(), request, &job);
  };
  EXPECT_TRUE(submit(10 << 10).ok());
  grpc::Status s = submit(100 << 10);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  // As clients report it: the setting behind the limit is named.
  EXPECT_THAT(std::string(FromGrpcStatus(s).message()), HasSubstr("rpc.max_receive_message_bytes"));
}

// Lists services through the reflection service, with a generic stub and dynamic messages
// (as grpcurl and `buf curl` do).
std::vector<std::string> ReflectedServices(const RpcClient& client) {
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  const auto* request_type =
      pool->FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionRequest");
  const auto* response_type =
      pool->FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionResponse");
  if (request_type == nullptr || response_type == nullptr) {
    ADD_FAILURE() << "reflection descriptors are not linked in";
    return {};
  }
  auto* factory = google::protobuf::MessageFactory::generated_factory();
  std::unique_ptr<google::protobuf::Message> request(factory->GetPrototype(request_type)->New());
  request->GetReflection()->SetString(request.get(), request_type->FindFieldByName("list_services"),
                                      "*");
  const std::string wire = request->SerializeAsString();
  grpc::Slice slice(wire);
  grpc::ByteBuffer request_buffer(&slice, 1);

  grpc::GenericStub stub(client.channel());
  grpc::ClientContext context;
  client.PrepareContext(context, absl::Seconds(10));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  auto step = [&cq](intptr_t tag) {
    void* got = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&got, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(got), tag);
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  EXPECT_TRUE(step(1));
  call->Write(request_buffer, reinterpret_cast<void*>(2));
  EXPECT_TRUE(step(2));
  call->WritesDone(reinterpret_cast<void*>(3));
  EXPECT_TRUE(step(3));
  grpc::ByteBuffer response_buffer;
  call->Read(&response_buffer, reinterpret_cast<void*>(4));
  EXPECT_TRUE(step(4));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  step(5);
  EXPECT_TRUE(status.ok()) << status.error_message();

  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(response_buffer.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  std::unique_ptr<google::protobuf::Message> response(factory->GetPrototype(response_type)->New());
  EXPECT_TRUE(response->ParseFromString(bytes));
  const auto* list_field = response_type->FindFieldByName("list_services_response");
  const google::protobuf::Message& list =
      response->GetReflection()->GetMessage(*response, list_field);
  const auto* service_field = list.GetDescriptor()->FindFieldByName("service");
  std::vector<std::string> names;
  for (int i = 0; i < list.GetReflection()->FieldSize(list, service_field); ++i) {
    const google::protobuf::Message& service =
        list.GetReflection()->GetRepeatedMessage(list, service_field, i);
    names.push_back(service.GetReflection()->GetString(
        service, service.GetDescriptor()->FindFieldByName("name")));
  }
  cq.Shutdown();
  return names;
}

TEST(ServerTest, ServesReflection) {
  Running r = StartServer(RpcConfig{});
  const std::vector<std::string> services = ReflectedServices(Connect(r, RpcConfig{}));
  EXPECT_THAT(services, ::testing::Contains(kProblemService));
  EXPECT_THAT(services, ::testing::Contains("grpc.reflection.v1alpha.ServerReflection"));
}

TEST(ServerTest, TlsServerTalksToTlsClientsOnly) {
  Running r = StartServer(TlsConfig(/*mutual=*/false));
  ASSERT_NE(r.server, nullptr);
  RpcConfig client_config;
  client_config.tls.enabled = true;
  client_config.tls.ca_file = DataPath("tls/ca.pem");
  v1::Job job;
  EXPECT_TRUE(GetJob(Connect(r, client_config), "tls-job", &job).ok());
  EXPECT_EQ(job.job_id(), "tls-job");

  grpc::Status plain = GetJob(Connect(r, RpcConfig{}), "x", &job);
  EXPECT_EQ(plain.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST(ServerTest, MutualTlsRequiresAClientCertificate) {
  Running r = StartServer(TlsConfig(/*mutual=*/true));
  ASSERT_NE(r.server, nullptr);
  RpcConfig no_cert;
  no_cert.tls.enabled = true;
  no_cert.tls.ca_file = DataPath("tls/ca.pem");
  v1::Job job;
  EXPECT_FALSE(GetJob(Connect(r, no_cert), "x", &job).ok());

  RpcConfig with_cert = no_cert;
  with_cert.tls.cert_file = DataPath("tls/client.pem");
  with_cert.tls.key_file = DataPath("tls/client.key");
  EXPECT_TRUE(GetJob(Connect(r, with_cert), "mtls", &job).ok());
}

TEST(ServerTest, BadSettingsGiveClearErrors) {
  RpcConfig missing_cert = TlsConfig(false);
  missing_cert.tls.cert_file = "/nonexistent/server.pem";
  absl::Status s = GrpcServer::Start({.name = "t", .rpc = missing_cert}, {}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "rpc.tls.cert_file /nonexistent/server.pem: cannot open");

  RpcConfig not_pem = TlsConfig(false);
  not_pem.tls.key_file = DataPath("tls/README.md");
  EXPECT_THAT(std::string(GrpcServer::Start({.name = "t", .rpc = not_pem}, {}).status().message()),
              HasSubstr("not a PEM file"));

  s = GrpcServer::Start({.name = "t", .listen_address = "not-an-address", .rpc = {}}, {}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()), HasSubstr("cannot listen on not-an-address"));

  // A port already taken is refused (no silent SO_REUSEPORT sharing between two servers).
  Running first = StartServer(RpcConfig{});
  s = GrpcServer::Start(
          {.name = "second", .listen_address = first.server->dial_address(), .rpc = {}}, {})
          .status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);

  RpcConfig bad_token;
  bad_token.auth.token_file = "/nonexistent/token";
  EXPECT_EQ(RpcClient::Connect("127.0.0.1:1", bad_token).status().message(),
            "rpc.auth.token_file /nonexistent/token: cannot open");
}

TEST(ServerTest, ShutdownIsIdempotent) {
  Running r = StartServer(RpcConfig{});
  r.server->Shutdown(absl::Seconds(1));
  r.server->Shutdown(absl::Seconds(1));
  r.server->Wait();
}

}  // namespace
}  // namespace deepsearch::rpc
