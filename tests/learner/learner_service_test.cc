// LearnerService and ProblemService over real gRPC on loopback: a client submits a SOLVE job,
// an actor stub leases it and streams trajectories (re-sends and malformed ones included),
// the job completes with results; every malformed request gets a status naming the field.
#include "learner/learner_service.h"

#include <chrono>
#include <fstream>
#include <functional>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "common/rpc/channel.h"
#include "learner/learner_convert.h"
#include "tests/learner/learner_testing.h"
#include "tests/rpc/role_tokens.h"

namespace deepsearch {
namespace {

using ::testing::HasSubstr;
using testing_learner::AnswerLease;
using testing_learner::NumberedProblems;
using testing_learner::ScratchDir;
using testing_learner::TinyModel;

v1::Trajectory ToProto(const TrajectoryRecord& r, const std::string& job_id,
                       const std::string& problem_id) {
  v1::Trajectory p;
  p.set_trajectory_id(r.trajectory_id);
  p.set_lease_id(r.lease_id);
  p.set_job_id(job_id);
  p.set_problem_id(problem_id);
  p.set_tree_id(r.tree_id);
  const TrainSequence& s = r.sequence;
  p.mutable_prompt_tokens()->Add(s.prompt_tokens.begin(), s.prompt_tokens.end());
  p.mutable_response_tokens()->Add(s.response_tokens.begin(), s.response_tokens.end());
  p.mutable_behavior_logprobs()->Add(s.behavior_logprobs.begin(), s.behavior_logprobs.end());
  p.mutable_token_scores()->Add(s.token_scores.begin(), s.token_scores.end());
  p.mutable_verdict()->set_outcome(r.correct ? v1::Verdict::OUTCOME_CORRECT
                                             : v1::Verdict::OUTCOME_INCORRECT);
  p.mutable_verdict()->set_predicted(r.predicted);
  v1::VersionRange* v = p.add_versions();
  v->set_weight_version(s.weight_version);
  v->set_begin(0);
  v->set_end(static_cast<int32_t>(s.response_tokens.size()));
  p.set_final_score(s.final_score);
  return p;
}

class LearnerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LearnerOptions options;
    options.state_dir = dir_.Sub("state");
    options.model = TinyModel(dir_);
    Adjust(options);
    auto learner = Learner::Create(options, nullptr);
    ASSERT_TRUE(learner.ok()) << learner.status();
    learner_ = std::move(*learner);
    learner_service_ = std::make_unique<LearnerServiceImpl>(learner_.get(), Auth());
    problem_service_ = std::make_unique<ProblemServiceImpl>(learner_.get(), Auth());
    auto server = rpc::GrpcServer::Start(
        rpc::ServerOptions{.name = "learner", .listen_address = "127.0.0.1:0", .rpc = {}},
        {{learner_service_.get(), "deepsearch.v1.LearnerService"},
         {problem_service_.get(), "deepsearch.v1.ProblemService"}});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto client = rpc::RpcClient::Connect(server_->dial_address(), RpcConfig{});
    ASSERT_TRUE(client.ok());
    channel_ = client->channel();
    learner_stub_ = v1::LearnerService::NewStub(channel_);
    problem_stub_ = v1::ProblemService::NewStub(channel_);
    learner_->Start();
  }
  void TearDown() override {
    server_->Shutdown(absl::ZeroDuration());
    ASSERT_TRUE(learner_->Shutdown().ok());
  }
  virtual void Adjust(LearnerOptions&) {}
  virtual rpc::ServerAuth Auth() { return rpc::ServerAuth(); }

  v1::SubmitProblemSetRequest SolveRequest(int problems) {
    v1::SubmitProblemSetRequest submit;
    submit.set_kind(v1::JOB_KIND_SOLVE);
    for (const Problem& p : NumberedProblems(problems)) {
      v1::Problem* q = submit.add_problems();
      q->set_id(p.id);
      q->set_prompt(p.prompt);
      q->set_answer(p.answer);
      q->set_task(p.task);
    }
    return submit;
  }

  ScratchDir dir_{"learner_service"};
  std::unique_ptr<Learner> learner_;
  std::unique_ptr<LearnerServiceImpl> learner_service_;
  std::unique_ptr<ProblemServiceImpl> problem_service_;
  std::unique_ptr<rpc::GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::LearnerService::Stub> learner_stub_;
  std::unique_ptr<v1::ProblemService::Stub> problem_stub_;
};

TEST_F(LearnerServiceTest, ASolveJobFlowsFromSubmissionThroughLeasesToResults) {
  v1::SubmitProblemSetRequest submit;
  submit.set_kind(v1::JOB_KIND_SOLVE);
  submit.set_name("eval");
  submit.set_client_request_id("req-7");
  submit.mutable_options()->set_samples_per_problem(4);
  for (const Problem& p : NumberedProblems(2)) {
    v1::Problem* q = submit.add_problems();
    q->set_id(p.id);
    q->set_prompt(p.prompt);
    q->set_answer(p.answer);
    q->set_task(p.task);
  }
  v1::Job job;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(problem_stub_->SubmitProblemSet(&context, submit, &job).ok());
  }
  EXPECT_EQ(job.kind(), v1::JOB_KIND_SOLVE);
  {  // A retried submission returns the same job.
    grpc::ClientContext context;
    v1::Job again;
    ASSERT_TRUE(problem_stub_->SubmitProblemSet(&context, submit, &again).ok());
    EXPECT_EQ(again.job_id(), job.job_id());
  }

  // The actor leases both problems (the driver issues them within a poll).
  v1::LeaseWorkResponse leases;
  for (int i = 0; i < 100 && leases.leases_size() < 2; ++i) {
    grpc::ClientContext context;
    v1::LeaseWorkRequest request;
    request.set_actor_id("actor-1");
    request.set_max_leases(8);
    v1::LeaseWorkResponse response;
    ASSERT_TRUE(learner_stub_->LeaseWork(&context, request, &response).ok());
    for (const v1::Lease& l : response.leases()) *leases.add_leases() = l;
    if (leases.leases_size() < 2) absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(leases.leases_size(), 2);
  EXPECT_EQ(leases.leases(0).mode(), v1::LEASE_MODE_SOLVE);
  EXPECT_EQ(leases.leases(0).num_trajectories(), 4);
  EXPECT_EQ(leases.leases(0).attempt(), 1);

  // One batch with both trees, one malformed trajectory; then the same batch again.
  v1::TrajectoryBatch batch;
  batch.set_actor_id("actor-1");
  batch.set_sequence(1);
  for (const v1::Lease& lease : leases.leases()) {
    IssuedLease issued;
    issued.lease_id = lease.lease_id();
    issued.attempt = lease.attempt();
    issued.spec.problem.id = lease.problem().id();
    issued.spec.problem.answer = lease.problem().answer();
    issued.spec.num_trajectories = lease.num_trajectories();
    issued.spec.sampling.seed = lease.sampling().seed();
    for (const TrajectoryRecord& r : AnswerLease(issued, 1))
      *batch.add_trajectories() = ToProto(r, job.job_id(), lease.problem().id());
    batch.add_completed_lease_ids(lease.lease_id());
  }
  v1::Trajectory bad = batch.trajectories(0);
  bad.set_trajectory_id("bad/0");
  bad.mutable_token_scores()->RemoveLast();
  *batch.add_trajectories() = bad;
  {
    grpc::ClientContext context;
    auto stream = learner_stub_->StreamTrajectories(&context);
    ASSERT_TRUE(stream->Write(batch));
    v1::TrajectoryAck ack;
    ASSERT_TRUE(stream->Read(&ack));
    EXPECT_EQ(ack.sequence(), 1);
    EXPECT_EQ(ack.accepted(), 8);
    EXPECT_EQ(ack.duplicates(), 0);
    ASSERT_EQ(ack.rejections_size(), 1);
    EXPECT_EQ(ack.rejections(0).trajectory_id(), "bad/0");
    EXPECT_THAT(ack.rejections(0).reason(), HasSubstr("token_scores"));
    batch.set_sequence(2);
    ASSERT_TRUE(stream->Write(batch));
    ASSERT_TRUE(stream->Read(&ack));
    EXPECT_EQ(ack.sequence(), 2);
    EXPECT_EQ(ack.accepted(), 0);
    EXPECT_EQ(ack.duplicates(), 8);
    stream->WritesDone();
    EXPECT_TRUE(stream->Finish().ok());
  }

  // WatchJob follows the job to its end.
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::WatchJobRequest request;
    request.set_job_id(job.job_id());
    auto reader = problem_stub_->WatchJob(&context, request);
    v1::JobEvent event;
    v1::JobState last = v1::JOB_STATE_UNSPECIFIED;
    while (reader->Read(&event)) last = event.job().state();
    EXPECT_TRUE(reader->Finish().ok());
    EXPECT_EQ(last, v1::JOB_STATE_SUCCEEDED);
  }
  grpc::ClientContext context;
  v1::GetJobRequest get;
  get.set_job_id(job.job_id());
  get.set_include_results(true);
  v1::Job done;
  ASSERT_TRUE(problem_stub_->GetJob(&context, get, &done).ok());
  EXPECT_EQ(done.progress().problems_done(), 2);
  EXPECT_EQ(done.progress().problems_solved(), 1);  // p1: 1 of 4 correct; p0: none
  ASSERT_EQ(done.results_size(), 2);
  for (const v1::ProblemResult& r : done.results()) {
    if (r.problem_id() == "p1") {
      EXPECT_EQ(r.answer(), "2");
      EXPECT_EQ(r.selection(), "verified");
      EXPECT_TRUE(r.correct());
      EXPECT_DOUBLE_EQ(r.pass_at_k().at(1), 0.25);
    } else {
      EXPECT_EQ(r.selection(), "majority");
      EXPECT_FALSE(r.correct());
    }
  }
  // Cancelling a finished job is refused.
  grpc::ClientContext cancel_context;
  v1::CancelJobRequest cancel;
  cancel.set_job_id(job.job_id());
  v1::Job cancelled;
  EXPECT_EQ(problem_stub_->CancelJob(&cancel_context, cancel, &cancelled).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(LearnerServiceTest, ListJobsPagesNewestFirstAndFilters) {
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    v1::SubmitProblemSetRequest submit;
    submit.set_kind(v1::JOB_KIND_TRAIN);
    submit.set_name(absl::StrCat("job", i));
    v1::Problem* problem = submit.add_problems();
    problem->set_id("p0");
    problem->set_prompt("1+1");
    grpc::ClientContext context;
    v1::Job job;
    const grpc::Status status = problem_stub_->SubmitProblemSet(&context, submit, &job);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ids.push_back(job.job_id());
  }
  v1::ListJobsRequest request;
  request.set_page_size(2);
  v1::ListJobsResponse page;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(problem_stub_->ListJobs(&context, request, &page).ok());
  }
  ASSERT_EQ(page.jobs_size(), 2);
  EXPECT_EQ(page.jobs(0).job_id(), ids[2]);
  EXPECT_EQ(page.jobs(1).job_id(), ids[1]);
  ASSERT_FALSE(page.next_page_token().empty());
  request.set_page_token(page.next_page_token());
  {
    grpc::ClientContext context;
    ASSERT_TRUE(problem_stub_->ListJobs(&context, request, &page).ok());
  }
  ASSERT_EQ(page.jobs_size(), 1);
  EXPECT_EQ(page.jobs(0).job_id(), ids[0]);
  EXPECT_TRUE(page.next_page_token().empty());
  // Cancel one; filter on CANCELLED.
  {
    grpc::ClientContext context;
    v1::CancelJobRequest cancel;
    cancel.set_job_id(ids[1]);
    v1::Job job;
    ASSERT_TRUE(problem_stub_->CancelJob(&context, cancel, &job).ok());
    EXPECT_EQ(job.state(), v1::JOB_STATE_CANCELLED);
  }
  request.Clear();
  request.set_state_filter(v1::JOB_STATE_CANCELLED);
  grpc::ClientContext context;
  ASSERT_TRUE(problem_stub_->ListJobs(&context, request, &page).ok());
  ASSERT_EQ(page.jobs_size(), 1);
  EXPECT_EQ(page.jobs(0).job_id(), ids[1]);
}

TEST_F(LearnerServiceTest, MalformedRequestsGetStatusesNamingTheField) {
  auto submit = [&](const v1::SubmitProblemSetRequest& request) {
    grpc::ClientContext context;
    v1::Job job;
    return problem_stub_->SubmitProblemSet(&context, request, &job);
  };
  v1::SubmitProblemSetRequest request;
  request.add_problems()->set_id("p0");
  grpc::Status s = submit(request);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("kind"));
  request.set_kind(v1::JOB_KIND_TRAIN);
  request.mutable_options()->set_algorithm("ppo");
  s = submit(request);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("ppo"));
  request.mutable_options()->set_algorithm("grpo");
  request.mutable_options()->mutable_search()->set_max_depth(-3);
  s = submit(request);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("options.search"));
  request.clear_options();
  request.clear_problems();
  s = submit(request);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  {
    grpc::ClientContext context;
    v1::GetJobRequest get;
    get.set_job_id("job-nope");
    v1::Job job;
    EXPECT_EQ(problem_stub_->GetJob(&context, get, &job).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext context;
    v1::ListJobsRequest list;
    list.set_page_token("garbage");
    v1::ListJobsResponse page;
    EXPECT_EQ(problem_stub_->ListJobs(&context, list, &page).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    grpc::ClientContext context;
    v1::LeaseWorkRequest lease;
    lease.set_max_leases(1);
    v1::LeaseWorkResponse response;
    const grpc::Status status = learner_stub_->LeaseWork(&context, lease, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("actor_id"));
  }
  {  // A trajectory for a lease nobody holds is rejected by the lease manager, with a reason.
    grpc::ClientContext context;
    auto stream = learner_stub_->StreamTrajectories(&context);
    v1::TrajectoryBatch batch;
    batch.set_actor_id("actor-1");
    v1::Trajectory* t = batch.add_trajectories();
    t->set_trajectory_id("job-x-1.1/0");
    t->set_lease_id("job-x-1");
    t->set_tree_id("job-x-1.1");
    t->add_response_tokens(5);
    t->add_token_scores(1.0f);
    t->add_behavior_logprobs(-1.0f);
    v1::VersionRange* v = t->add_versions();
    v->set_begin(0);
    v->set_end(1);
    ASSERT_TRUE(stream->Write(batch));
    v1::TrajectoryAck ack;
    ASSERT_TRUE(stream->Read(&ack));
    ASSERT_EQ(ack.rejections_size(), 1);
    EXPECT_THAT(ack.rejections(0).reason(), HasSubstr("job-x-1"));
    stream->WritesDone();
    EXPECT_TRUE(stream->Finish().ok());
  }
  {  // Bytes that are not a TrajectoryBatch end the stream with INVALID_ARGUMENT (not OK).
    grpc::GenericStub generic(channel_);
    grpc::CompletionQueue cq;
    grpc::ClientContext context;
    auto stream =
        generic.PrepareCall(&context, "/deepsearch.v1.LearnerService/StreamTrajectories", &cq);
    void* tag = nullptr;
    bool ok = false;
    auto await = [&](intptr_t want) {
      ASSERT_TRUE(cq.Next(&tag, &ok));
      EXPECT_EQ(reinterpret_cast<intptr_t>(tag), want);
    };
    stream->StartCall(reinterpret_cast<void*>(1));
    await(1);
    const std::string garbage = "\xff\xff\xff\xff";  // a truncated field tag
    grpc::Slice slice(garbage);
    grpc::ByteBuffer buffer(&slice, 1);
    stream->Write(buffer, reinterpret_cast<void*>(2));
    await(2);
    grpc::ByteBuffer reply;
    stream->Read(&reply, reinterpret_cast<void*>(3));
    await(3);
    EXPECT_FALSE(ok) << "an ack for bytes that do not parse";
    grpc::Status status;
    stream->Finish(&status, reinterpret_cast<void*>(4));
    await(4);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr("message 1 (4 bytes) is not a TrajectoryBatch"));
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
  }
}

// The learner's eight methods through the real handlers with role-scoped tokens, and its
// limits: problems per submission and watchers per job.
class LearnerServiceLimitsTest : public LearnerServiceTest {
 protected:
  void Adjust(LearnerOptions& options) override {
    options.max_problems_per_submission = 3;
    options.max_watchers_per_job = 1;
  }
  rpc::ServerAuth Auth() override {
    const AuthConfig auth = testing_rpc::WriteRoleTokens(dir_.Sub("tokens"));
    absl::StatusOr<rpc::ServerAuth> parsed = rpc::ServerAuth::FromConfig(auth);
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    return *parsed;
  }
  static void As(grpc::ClientContext& context, const std::string& role) {
    context.AddMetadata("authorization", "Bearer " + role + "-token");
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  }
};

TEST_F(LearnerServiceLimitsTest, EachMethodAcceptsExactlyItsRoles) {
  using Call = std::function<grpc::Status(grpc::ClientContext&)>;
  const std::vector<std::pair<std::string, Call>> calls = {
      {"LearnerService/LeaseWork",
       [&](grpc::ClientContext& c) {
         v1::LeaseWorkRequest request;
         request.set_actor_id("a");
         request.set_max_leases(1);
         v1::LeaseWorkResponse r;
         return learner_stub_->LeaseWork(&c, request, &r);
       }},
      {"LearnerService/RenewLease",
       [&](grpc::ClientContext& c) {
         v1::RenewLeaseRequest request;
         request.set_actor_id("a");
         v1::RenewLeaseResponse r;
         return learner_stub_->RenewLease(&c, request, &r);
       }},
      {"LearnerService/StreamTrajectories",
       [&](grpc::ClientContext& c) {
         auto stream = learner_stub_->StreamTrajectories(&c);
         stream->WritesDone();
         return stream->Finish();
       }},
      {"ProblemService/SubmitProblemSet",
       [&](grpc::ClientContext& c) {
         v1::Job job;
         return problem_stub_->SubmitProblemSet(&c, SolveRequest(1), &job);
       }},
      {"ProblemService/GetJob",
       [&](grpc::ClientContext& c) {
         v1::GetJobRequest request;
         request.set_job_id("nope");
         v1::Job job;
         return problem_stub_->GetJob(&c, request, &job);
       }},
      {"ProblemService/ListJobs",
       [&](grpc::ClientContext& c) {
         v1::ListJobsResponse r;
         return problem_stub_->ListJobs(&c, {}, &r);
       }},
      {"ProblemService/CancelJob",
       [&](grpc::ClientContext& c) {
         v1::CancelJobRequest request;
         request.set_job_id("nope");
         v1::Job job;
         return problem_stub_->CancelJob(&c, request, &job);
       }},
      {"ProblemService/WatchJob",
       [&](grpc::ClientContext& c) {
         v1::WatchJobRequest request;
         request.set_job_id("nope");
         auto reader = problem_stub_->WatchJob(&c, request);
         v1::JobEvent event;
         while (reader->Read(&event)) {
         }
         return reader->Finish();
       }},
  };
  for (rpc::Role role : rpc::kAllRoles) {
    const std::string name(rpc::RoleName(role));
    for (const auto& [method, call] : calls) {
      const std::string full = "deepsearch.v1." + method;
      grpc::ClientContext context;
      As(context, name);
      const grpc::Status s = call(context);
      if (rpc::AllowedRoles(full).Has(role)) {
        // Admitted: the handler's own answer (OK, or NOT_FOUND for the job "nope").
        EXPECT_TRUE(s.ok() || s.error_code() == grpc::StatusCode::NOT_FOUND)
            << full << " x " << name << ": " << s.error_code() << " " << s.error_message();
      } else {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << full << " x " << name;
        EXPECT_THAT(s.error_message(), HasSubstr(full));
      }
    }
  }
  grpc::ClientContext anonymous;
  v1::ListJobsResponse jobs;
  EXPECT_EQ(problem_stub_->ListJobs(&anonymous, {}, &jobs).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(LearnerServiceLimitsTest, SubmissionsAndWatchersPastTheirLimitsNameTheKey) {
  v1::Job job;
  {
    grpc::ClientContext context;
    As(context, "client");
    const grpc::Status s = problem_stub_->SubmitProblemSet(&context, SolveRequest(4), &job);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_EQ(s.error_message(),
              "SubmitProblemSet: 4 problems; at most 3 per submission "
              "(learner.max_problems_per_submission)");
  }
  {
    grpc::ClientContext context;
    As(context, "client");
    ASSERT_TRUE(problem_stub_->SubmitProblemSet(&context, SolveRequest(3), &job).ok());
  }
  // No actor serves the job, so a watcher stays open; a second one is refused.
  grpc::ClientContext first_context;
  As(first_context, "client");
  v1::WatchJobRequest watch;
  watch.set_job_id(job.job_id());
  auto first = problem_stub_->WatchJob(&first_context, watch);
  v1::JobEvent event;
  ASSERT_TRUE(first->Read(&event));
  grpc::ClientContext second_context;
  As(second_context, "admin");
  auto second = problem_stub_->WatchJob(&second_context, watch);
  EXPECT_FALSE(second->Read(&event));
  const grpc::Status s = second->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(s.error_message(), absl::StrCat("WatchJob: job ", job.job_id(),
                                            " has 1 watchers open; at most 1 "
                                            "(learner.max_watchers_per_job)"));
  first_context.TryCancel();
  while (first->Read(&event)) {
  }
  first->Finish();
}

bool WaitUntil(const std::function<bool()>& ready, absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!ready()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

// Actors that vanish: the lease they held expires at its deadline though nobody asks for
// work, the stall shows in the job's status, and an actor that comes back gets the lease
// again (its next attempt) and ends the stall.
class LearnerServiceStallTest : public LearnerServiceTest {
 protected:
  void Adjust(LearnerOptions& options) override {
    options.lease_duration = absl::Milliseconds(300);
    options.stall_after = absl::Milliseconds(500);
  }
  v1::Job Get(const std::string& id) {
    grpc::ClientContext context;
    v1::GetJobRequest request;
    request.set_job_id(id);
    v1::Job job;
    EXPECT_TRUE(problem_stub_->GetJob(&context, request, &job).ok());
    return job;
  }
  v1::LeaseWorkResponse Lease() {
    grpc::ClientContext context;
    v1::LeaseWorkRequest request;
    request.set_actor_id("a");
    request.set_max_leases(10);
    v1::LeaseWorkResponse response;
    EXPECT_TRUE(learner_stub_->LeaseWork(&context, request, &response).ok());
    return response;
  }
};

TEST_F(LearnerServiceStallTest, VanishedActorsLeaveExpiringLeasesAndAReportedStall) {
  v1::Job job;
  {
    grpc::ClientContext context;
    v1::SubmitProblemSetRequest submit = SolveRequest(1);
    submit.mutable_options()->set_samples_per_problem(2);
    ASSERT_TRUE(problem_stub_->SubmitProblemSet(&context, submit, &job).ok());
  }
  v1::LeaseWorkResponse first;
  for (int i = 0; i < 100 && first.leases_size() == 0; ++i) {
    first = Lease();
    if (first.leases_size() == 0) absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(first.leases_size(), 1);
  EXPECT_EQ(first.leases(0).attempt(), 1);
  EXPECT_EQ(Get(job.job_id()).progress().stalled_seconds(), 0.0);
  // The actor vanishes: no call at all. The driver expires the lease at its deadline.
  ASSERT_TRUE(WaitUntil([&] { return learner_->stats().leases.expired == 1; }));
  EXPECT_EQ(learner_->stats().leases.pending, 1);
  ASSERT_TRUE(WaitUntil([&] { return Get(job.job_id()).progress().stalled_seconds() >= 0.5; }));
  EXPECT_GT(learner_->stats().stalled_seconds, 0.0);
  // An actor is back: it gets the same lease, second attempt, and the stall is over.
  const v1::LeaseWorkResponse again = Lease();
  ASSERT_EQ(again.leases_size(), 1);
  EXPECT_EQ(again.leases(0).lease_id(), first.leases(0).lease_id());
  EXPECT_EQ(again.leases(0).attempt(), 2);
  EXPECT_EQ(Get(job.job_id()).progress().stalled_seconds(), 0.0);
  EXPECT_EQ(learner_->stats().stalled_seconds, 0.0);
}

TEST(LearnerConvertTest, TrajectoriesMustTileTheirVersionRanges) {
  v1::Trajectory t;
  t.set_trajectory_id("l.1/0");
  t.set_lease_id("l");
  t.set_tree_id("l.1");
  for (int i = 0; i < 4; ++i) {
    t.add_response_tokens(3 + i);
    t.add_token_scores(0.5f);
    t.add_behavior_logprobs(-1.0f);
  }
  auto range = [&](int64_t version, int32_t begin, int32_t end) {
    v1::VersionRange* r = t.add_versions();
    r->set_weight_version(version);
    r->set_begin(begin);
    r->set_end(end);
  };
  range(4, 0, 2);
  range(3, 2, 4);
  absl::StatusOr<TrajectoryRecord> r = TrajectoryFromProto(t);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->sequence.weight_version, 3);  // the oldest
  EXPECT_EQ(r->sequence.group_id, "l.1");
  t.mutable_versions()->RemoveLast();
  EXPECT_THAT(std::string(TrajectoryFromProto(t).status().message()), HasSubstr("cover 2 of 4"));
  range(3, 3, 4);
  EXPECT_THAT(std::string(TrajectoryFromProto(t).status().message()), HasSubstr("tile"));
  t.mutable_versions()->RemoveLast();
  range(3, 2, 4);
  t.set_token_scores(1, std::numeric_limits<float>::quiet_NaN());
  EXPECT_THAT(std::string(TrajectoryFromProto(t).status().message()),
              HasSubstr("token_scores[1] is not finite"));
}

}  // namespace
}  // namespace deepsearch
