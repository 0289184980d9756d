// The ProblemService client:
//   deepsearch submit --learner ADDR --problems FILE [--kind train|solve] [--name N]
//                     [--samples K] [--algorithm deepsearch|grpo] [--max-steps S]
//                     [--request-id ID] [--watch]
//   deepsearch status --learner ADDR [JOB_ID] [--results] [--json]
//   deepsearch watch  --learner ADDR JOB_ID
//   deepsearch health ADDR [--service NAME] [--timeout 5s]
// `submit` sends a JSON Lines problem file as a job and prints its id (with --watch, follows
// it to the end). `status` lists jobs (newest first) or shows one, with per-problem results of
// a SOLVE job. `watch` prints the job's progress as it changes until it ends; the exit code is
// 0 when it succeeded, 1 otherwise. `health` asks any server's grpc.health.v1 service, as an
// exec probe would (Kubernetes' own gRPC probes cannot speak TLS): exit 0 when SERVING, 1
// otherwise, with the reason. TLS and the bearer token come from the config's rpc section
// (--config, --set; the token from rpc.auth.token_file or the variable rpc.auth.token_env
// names) and go with every call.
//
// A learner that cannot be reached (UNAVAILABLE: not up yet, restarting) is retried with
// backoff for --connect-timeout (30 s), with a line on stderr; `submit` always carries a
// request id (a fresh one when --request-id is not given), so a retried submission makes one
// job. `watch` follows the job across a restart of the learner in the same way.
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "deepsearch/v1/problem_service.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "wire/convert.h"

#include "cli/commands.h"
#include "cli/deepsearch_config.h"
#include "common/core/backoff.h"
#include "common/core/hash.h"
#include "common/core/rng.h"
#include "common/rpc/channel.h"
#include "common/rpc/status_conversion.h"
#include "common/tasks/dataset.h"

namespace deepsearch::cli {
namespace {

struct ClientArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string learner = "127.0.0.1:50051";
  std::string problems;
  std::string kind = "solve";
  std::string name;
  int32_t samples = 0;
  std::string algorithm;
  int32_t max_steps = 0;
  std::string request_id;
  bool watch = false;
  std::string job_id;
  bool results = false;
  bool json = false;
  double connect_timeout_s = 30;
};

int Fail(std::string_view command, const std::string& message) {
  std::cerr << "deepsearch " << command << ": " << message << "\n";
  return kExitFailure;
}

// A channel to the learner (TLS and token from the config's rpc section) and its stub.
struct Connection {
  rpc::RpcClient client;
  std::unique_ptr<v1::ProblemService::Stub> stub;
  absl::Duration connect_timeout;

  // A backoff for retrying this learner.
  Backoff NewBackoff() const {
    return Backoff(absl::Milliseconds(200), absl::Seconds(2), Hash64(client.target(), 7));
  }
  // After a failed call: whether to make it again (UNAVAILABLE before `give_up`), having
  // said so on stderr at the first retry and waited the backoff's next delay.
  bool RetryLater(std::string_view command, const grpc::Status& status, Backoff& backoff,
                  absl::Time give_up) const {
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE || absl::Now() >= give_up)
      return false;
    if (backoff.failures() == 0) {
      std::cerr << "deepsearch " << command << ": " << client.target() << " unavailable ("
                << status.error_message() << "); retrying for up to "
                << absl::FormatDuration(connect_timeout) << "\n";
    }
    absl::SleepFor(std::min(backoff.Next(), give_up - absl::Now()));
    return true;
  }

  // `call(context)` with the token and a deadline, retried while the learner is UNAVAILABLE
  // for at most connect_timeout.
  template <typename Call>
  grpc::Status Unary(std::string_view command, Call call) const {
    Backoff backoff = NewBackoff();
    const absl::Time give_up = absl::Now() + connect_timeout;
    while (true) {
      std::unique_ptr<grpc::ClientContext> context = client.NewContext(absl::Seconds(60));
      const grpc::Status status = call(*context);
      if (!RetryLater(command, status, backoff, give_up)) return status;
    }
  }
};

absl::StatusOr<Connection> Connect(const ClientArgs& args) {
  absl::StatusOr<DeepSearchConfig> config = LoadDeepSearchConfig(args.config, args.overrides);
  if (!config.ok()) return config.status();
  absl::StatusOr<rpc::RpcClient> client = rpc::RpcClient::Connect(args.learner, config->rpc);
  if (!client.ok()) return client.status();
  auto stub = v1::ProblemService::NewStub(client->channel());
  return Connection{std::move(*client), std::move(stub), absl::Seconds(args.connect_timeout_s)};
}

// "what: message (gRPC code N)" for a failed call.
std::string CallError(const Connection& c, const grpc::Status& status) {
  return absl::StrCat(c.client.target(), ": ", rpc::FromGrpcStatus(status).message(),
                      " (gRPC code ", static_cast<int>(status.error_code()), ")");
}

std::string StateName(v1::JobState state) {
  std::string name = v1::JobState_Name(state);
  return name.rfind("JOB_STATE_", 0) == 0 ? name.substr(10) : name;
}

std::string ProgressLine(const v1::Job& job) {
  const v1::JobProgress& p = job.progress();
  return absl::StrCat(
      job.job_id(), " ", StateName(job.state()), " [", p.phase(), "] ", p.problems_done(), "/",
      p.problems_total(), " problems, ", p.problems_solved(), " solved, ", p.trajectories(),
      " trajectories, ", p.generated_tokens(), " tokens, step ", p.training_steps(), ", version ",
      p.weight_version(), ", accuracy ", absl::StrFormat("%.3f", p.accuracy()),
      job.error().empty() ? "" : absl::StrCat(", error: ", job.error()),
      p.stalled_seconds() > 0
          ? absl::StrFormat(", STALLED: no actor heard from for %.0f s", p.stalled_seconds())
          : "");
}

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

int Watch(const Connection& c, const std::string& job_id) {
  v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
  Backoff backoff = c.NewBackoff();
  absl::Time give_up = absl::Now() + c.connect_timeout;
  while (true) {
    std::unique_ptr<grpc::ClientContext> context = c.client.NewContext(absl::InfiniteDuration());
    v1::WatchJobRequest request;
    request.set_job_id(job_id);
    std::unique_ptr<grpc::ClientReader<v1::JobEvent>> reader =
        c.stub->WatchJob(context.get(), request);
    v1::JobEvent event;
    while (reader->Read(&event)) {
      state = event.job().state();
      std::cout << ProgressLine(event.job()) << std::endl;
      backoff.Reset();
      give_up = absl::Now() + c.connect_timeout;
    }
    const grpc::Status status = reader->Finish();
    if (status.ok()) break;
    if (!c.RetryLater("watch", status, backoff, give_up))
      return Fail("watch", CallError(c, status));
  }
  return state == v1::JOB_STATE_SUCCEEDED ? kExitOk : kExitFailure;
}

int RunSubmit(const ClientArgs& args) {
  absl::StatusOr<ProblemSet> set = ReadProblemsJsonlFile(args.problems);
  if (!set.ok()) return Fail("submit", std::string(set.status().message()));
  if (!set->errors.empty())
    return Fail("submit", absl::StrCat(args.problems, ": ", set->ErrorSummary()));
  if (set->problems.empty()) return Fail("submit", absl::StrCat(args.problems, ": no problems"));
  absl::StatusOr<Connection> connection = Connect(args);
  if (!connection.ok()) return Fail("submit", std::string(connection.status().message()));
  const Connection& c = *connection;
  v1::SubmitProblemSetRequest request;
  request.set_kind(args.kind == "train" ? v1::JOB_KIND_TRAIN : v1::JOB_KIND_SOLVE);
  request.set_name(args.name.empty() ? args.problems : args.name);
  // A retried call must not make a second job.
  request.set_client_request_id(
      !args.request_id.empty()
          ? args.request_id
          : absl::StrFormat("submit-%016x",
                            Rng(static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())) ^
                                static_cast<uint64_t>(::getpid()) << 40)
                                .Next()));
  request.mutable_options()->set_samples_per_problem(args.samples);
  request.mutable_options()->set_algorithm(args.algorithm);
  request.mutable_options()->set_max_steps(args.max_steps);
  for (const Problem& p : set->problems) *request.add_problems() = ProblemToProto(p);
  v1::Job job;
  const grpc::Status status = c.Unary("submit", [&](grpc::ClientContext& context) {
    return c.stub->SubmitProblemSet(&context, request, &job);
  });
  if (!status.ok()) return Fail("submit", CallError(c, status));
  std::cout << job.job_id() << std::endl;
  return args.watch ? Watch(c, job.job_id()) : kExitOk;
}

int RunStatus(const ClientArgs& args) {
  absl::StatusOr<Connection> connection = Connect(args);
  if (!connection.ok()) return Fail("status", std::string(connection.status().message()));
  const Connection& c = *connection;
  if (args.job_id.empty()) {
    std::string token;
    do {
      v1::ListJobsRequest request;
      request.set_page_token(token);
      v1::ListJobsResponse page;
      const grpc::Status status = c.Unary("status", [&](grpc::ClientContext& context) {
        return c.stub->ListJobs(&context, request, &page);
      });
      if (!status.ok()) return Fail("status", CallError(c, status));
      for (const v1::Job& job : page.jobs()) {
        std::cout << (args.json ? ToJson(job) : absl::StrCat(job.name(), ": ", ProgressLine(job)))
                  << "\n";
      }
      token = page.next_page_token();
    } while (!token.empty());
    return kExitOk;
  }
  v1::GetJobRequest request;
  request.set_job_id(args.job_id);
  request.set_include_results(args.results);
  v1::Job job;
  const grpc::Status status = c.Unary("status", [&](grpc::ClientContext& context) {
    return c.stub->GetJob(&context, request, &job);
  });
  if (!status.ok()) return Fail("status", CallError(c, status));
  if (args.json) {
    std::cout << ToJson(job) << "\n";
    return kExitOk;
  }
  std::cout << ProgressLine(job) << "\n";
  for (const v1::ProblemResult& r : job.results()) {
    std::cout << "  " << r.problem_id() << ": " << r.answer() << " (" << r.selection()
              << (r.correct() ? ", correct" : "") << ", " << r.correct_samples() << "/"
              << r.samples() << " correct)\n";
  }
  return kExitOk;
}

struct HealthArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string address;
  std::string service;
  double timeout_s = 5;
};

int RunHealth(const HealthArgs& args) {
  absl::StatusOr<DeepSearchConfig> config = LoadDeepSearchConfig(args.config, args.overrides);
  if (!config.ok()) return Fail("health", std::string(config.status().message()));
  absl::StatusOr<rpc::RpcClient> client = rpc::RpcClient::Connect(args.address, config->rpc);
  if (!client.ok()) return Fail("health", std::string(client.status().message()));
  auto stub = grpc::health::v1::Health::NewStub(client->channel());
  std::unique_ptr<grpc::ClientContext> context = client->NewContext(absl::Seconds(args.timeout_s));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(args.service);
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = stub->Check(context.get(), request, &response);
  const std::string what =
      absl::StrCat(args.address, args.service.empty() ? "" : absl::StrCat(" (", args.service, ")"));
  if (!status.ok()) {
    return Fail("health", absl::StrCat(what, ": ", status.error_message(), " (gRPC code ",
                                       static_cast<int>(status.error_code()), ")"));
  }
  const std::string state =
      grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status());
  if (response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return Fail("health", absl::StrCat(what, ": ", state));
  }
  std::cout << what << ": " << state << "\n";
  return kExitOk;
}

void AddConnectionOptions(CLI::App* cmd, ClientArgs& args) {
  cmd->add_option("--learner", args.learner, "host:port of the learner")->capture_default_str();
  cmd->add_option("--config", args.config, "Config file (its rpc section: TLS, token)");
  cmd->add_option("--set", args.overrides, "Override a config key: KEY=VALUE (repeatable)");
  cmd->add_option("--connect-timeout", args.connect_timeout_s,
                  "Seconds to keep retrying an unreachable learner")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

}  // namespace

void AddClientCommands(CLI::App& app, int& exit_code) {
  auto submit = std::make_shared<ClientArgs>();
  CLI::App* cmd = app.add_subcommand("submit", "Submit a problem set to the learner as a job");
  AddConnectionOptions(cmd, *submit);
  cmd->add_option("--problems", submit->problems, "JSON Lines problem file")->required();
  cmd->add_option("--kind", submit->kind, "train or solve")
      ->check(CLI::IsMember({"train", "solve"}))
      ->capture_default_str();
  cmd->add_option("--name", submit->name, "Name shown in listings (default: the file)");
  cmd->add_option("--samples", submit->samples, "solve: trajectories per problem (0: default)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--algorithm", submit->algorithm, "train: deepsearch or grpo")
      ->check(CLI::IsMember({"deepsearch", "grpo"}));
  cmd->add_option("--max-steps", submit->max_steps, "train: training steps (0: until done)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--request-id", submit->request_id, "Makes a retried submission safe");
  cmd->add_flag("--watch", submit->watch, "Follow the job until it ends");
  cmd->callback([submit, &exit_code] { exit_code = RunSubmit(*submit); });

  auto status = std::make_shared<ClientArgs>();
  cmd = app.add_subcommand("status", "List the learner's jobs, or show one");
  AddConnectionOptions(cmd, *status);
  cmd->add_option("job_id", status->job_id, "A job (default: list every job)");
  cmd->add_flag("--results", status->results, "Per-problem results of a SOLVE job");
  cmd->add_flag("--json", status->json, "Print the job(s) as JSON");
  cmd->callback([status, &exit_code] { exit_code = RunStatus(*status); });

  auto watch = std::make_shared<ClientArgs>();
  cmd = app.add_subcommand("watch", "Print a job's progress until it ends");
  AddConnectionOptions(cmd, *watch);
  cmd->add_option("job_id", watch->job_id, "The job")->required();
  cmd->callback([watch, &exit_code] {
    absl::StatusOr<Connection> connection = Connect(*watch);
    if (!connection.ok()) {
      exit_code = Fail("watch", std::string(connection.status().message()));
      return;
    }
    exit_code = Watch(*connection, watch->job_id);
  });

  auto health = std::make_shared<HealthArgs>();
  cmd = app.add_subcommand(
      "health", "Ask a server's gRPC health service (an exec probe): exit 0 when SERVING");
  cmd->add_option("address", health->address, "host:port of the server")->required();
  cmd->add_option("--service", health->service, "A service name (default: the server as a whole)");
  cmd->add_option("--timeout", health->timeout_s, "Seconds to wait for the answer")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--config", health->config, "Config file (its rpc section: TLS)");
  cmd->add_option("--set", health->overrides, "Override a config key: KEY=VALUE (repeatable)");
  cmd->callback([health, &exit_code] { exit_code = RunHealth(*health); });
}

}  // namespace deepsearch::cli
