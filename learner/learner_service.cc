#include "learner/learner_service.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "wire/convert.h"

#include "common/core/status.h"
#include "common/rpc/status_conversion.h"
#include "learner/learner_convert.h"

namespace deepsearch {
namespace {

using google::protobuf::util::TimeUtil;

grpc::Status Invalid(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

// A job's proto with the learner's stall (LearnerStats::stalled_seconds, taken once per
// answer) when the job is not over.
v1::Job JobWithStall(const Job& job, bool include_results, double stalled_seconds) {
  v1::Job p = JobToProto(job, include_results);
  if (!IsTerminal(job.state)) p.mutable_progress()->set_stalled_seconds(stalled_seconds);
  return p;
}

}  // namespace

// --- LearnerService ------------------------------------------------------------------------

grpc::Status LearnerServiceImpl::LeaseWork(grpc::ServerContext* context,
                                           const v1::LeaseWorkRequest* request,
                                           v1::LeaseWorkResponse* response) {
  if (grpc::Status s = auth_.Check(*context, "deepsearch.v1.LearnerService/LeaseWork"); !s.ok())
    return s;
  if (request->actor_id().empty()) return Invalid("actor_id is empty");
  if (request->max_leases() < 1 || request->max_leases() > 100000) {
    return Invalid(absl::StrCat("max_leases must be in [1, 100000]; got ", request->max_leases()));
  }
  LeaseWorkResult result =
      learner_->LeaseWork(request->actor_id(), request->max_leases(), absl::Now());
  for (const IssuedLease& lease : result.leases) *response->add_leases() = LeaseToProto(lease);
  response->set_latest_weight_version(result.latest_weight_version);
  if (result.leases.empty()) {
    *response->mutable_retry_after() =
        TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(result.retry_after));
  }
  return grpc::Status::OK;
}

grpc::Status LearnerServiceImpl::RenewLease(grpc::ServerContext* context,
                                            const v1::RenewLeaseRequest* request,
                                            v1::RenewLeaseResponse* response) {
  if (grpc::Status s = auth_.Check(*context, "deepsearch.v1.LearnerService/RenewLease"); !s.ok())
    return s;
  if (request->actor_id().empty()) return Invalid("actor_id is empty");
  const std::vector<std::string> ids(request->lease_ids().begin(), request->lease_ids().end());
  for (const LeaseRenewal& r : learner_->Renew(request->actor_id(), ids, absl::Now())) {
    v1::LeaseRenewal* p = response->add_renewals();
    p->set_lease_id(r.lease_id);
    p->set_renewed(r.renewed);
    if (r.renewed)
      *p->mutable_deadline() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(r.deadline));
    p->set_reason(r.reason);
  }
  return grpc::Status::OK;
}

absl::StatusOr<v1::TrajectoryAck> LearnerServiceImpl::IngestBatch(
    const v1::TrajectoryBatch& batch) {
  if (batch.actor_id().empty()) {
    return absl::InvalidArgumentError("TrajectoryBatch.actor_id is empty");
  }
  v1::TrajectoryAck ack;
  ack.set_sequence(batch.sequence());
  IngestRequest request;
  request.actor_id = batch.actor_id();
  std::vector<std::string> ids;  // of the well-formed trajectories, in order
  for (const v1::Trajectory& t : batch.trajectories()) {
    absl::StatusOr<TrajectoryRecord> record = TrajectoryFromProto(t);
    if (!record.ok()) {
      v1::TrajectoryRejection* r = ack.add_rejections();
      r->set_trajectory_id(t.trajectory_id());
      r->set_reason(std::string(record.status().message()));
      continue;
    }
    ids.push_back(record->trajectory_id);
    request.trajectories.push_back(std::move(*record));
  }
  request.completed_lease_ids.assign(batch.completed_lease_ids().begin(),
                                     batch.completed_lease_ids().end());
  for (const v1::LeaseFailure& f : batch.failed_leases())
    request.failed_leases.emplace_back(f.lease_id(), f.reason());
  const std::vector<IngestResult> results = learner_->Ingest(std::move(request));
  int32_t accepted = 0, duplicates = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    switch (results[i].outcome) {
      case IngestOutcome::kAccepted:
        ++accepted;
        break;
      case IngestOutcome::kDuplicate:
        ++duplicates;
        break;
      case IngestOutcome::kRejected: {
        v1::TrajectoryRejection* r = ack.add_rejections();
        r->set_trajectory_id(ids[i]);
        r->set_reason(results[i].reason);
        break;
      }
    }
  }
  ack.set_accepted(accepted);
  ack.set_duplicates(duplicates);
  return ack;
}

namespace {

// One StreamTrajectories call: read a batch, parse it, ingest it, write its ack, repeat
// until the actor half-closes. Deletes itself when the call is done.
class TrajectoryStream final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // `admitted`: the call's auth and stream-limit check; `slot` is held until the call ends.
  TrajectoryStream(LearnerServiceImpl* service, const grpc::Status& admitted,
                   rpc::StreamLimiter::Slot slot)
      : service_(service), slot_(std::move(slot)) {
    if (!admitted.ok()) {
      Finish(admitted);
      return;
    }
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the actor half-closed (or the call broke: then the status is moot)
      Finish(grpc::Status::OK);
      return;
    }
    ++batches_;
    v1::TrajectoryBatch batch;
    const size_t bytes = in_.Length();
    if (!grpc::SerializationTraits<v1::TrajectoryBatch>::Deserialize(&in_, &batch).ok()) {
      Finish(Invalid(absl::StrCat("StreamTrajectories: message ", batches_, " (", bytes,
                                  " bytes) is not a TrajectoryBatch")));
      return;
    }
    absl::StatusOr<v1::TrajectoryAck> ack = service_->IngestBatch(batch);
    if (!ack.ok()) {
      Finish(rpc::ToGrpcStatus(ack.status()));
      return;
    }
    bool own_buffer = false;
    out_.Clear();
    if (!grpc::SerializationTraits<v1::TrajectoryAck>::Serialize(*ack, &out_, &own_buffer).ok()) {
      Finish(grpc::Status(grpc::StatusCode::INTERNAL, "cannot serialize a TrajectoryAck"));
      return;
    }
    StartWrite(&out_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the actor went away"));
      return;
    }
    StartRead(&in_);
  }

  void OnDone() override { delete this; }

 private:
  LearnerServiceImpl* service_;
  rpc::StreamLimiter::Slot slot_;
  grpc::ByteBuffer in_;
  grpc::ByteBuffer out_;
  int64_t batches_ = 0;
};

}  // namespace

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* LearnerServiceImpl::StreamTrajectories(
    grpc::CallbackServerContext* context) {
  rpc::StreamLimiter::Slot slot;
  const grpc::Status admitted = rpc::AdmitStream(
      auth_, streams_, *context, "deepsearch.v1.LearnerService/StreamTrajectories", &slot);
  return new TrajectoryStream(this, admitted, std::move(slot));
}

// --- ProblemService ------------------------------------------------------------------------

ProblemServiceImpl::ProblemServiceImpl(Learner* learner, rpc::ServerAuth auth,
                                       rpc::StreamLimiter* streams)
    : learner_(learner),
      auth_(std::move(auth)),
      streams_(streams),
      watchers_(learner->options().max_watchers_per_job, "learner.max_watchers_per_job", "job",
                "watchers") {}

grpc::Status ProblemServiceImpl::SubmitProblemSet(grpc::ServerContext* context,
                                                  const v1::SubmitProblemSetRequest* request,
                                                  v1::Job* response) {
  if (grpc::Status s = auth_.Check(*context, "deepsearch.v1.ProblemService/SubmitProblemSet");
      !s.ok()) {
    return s;
  }
  const int32_t max_problems = learner_->options().max_problems_per_submission;
  if (request->problems_size() > max_problems) {
    return grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("SubmitProblemSet: ", request->problems_size(), " problems; at most ",
                     max_problems, " per submission (learner.max_problems_per_submission)"));
  }
  absl::StatusOr<JobKind> kind = JobKindFromProto(request->kind());
  if (!kind.ok()) return rpc::ToGrpcStatus(kind.status());
  absl::StatusOr<JobOptions> options = JobOptionsFromProto(request->options());
  if (!options.ok()) return rpc::ToGrpcStatus(options.status());
  std::vector<Problem> problems;
  problems.reserve(static_cast<size_t>(request->problems_size()));
  for (const v1::Problem& p : request->problems()) problems.push_back(ProblemFromProto(p));
  absl::StatusOr<Job> job = learner_->Submit(*kind, request->name(), std::move(problems),
                                             std::move(*options), request->client_request_id());
  if (!job.ok()) return rpc::ToGrpcStatus(job.status());
  *response = JobToProto(*job, /*include_results=*/false);
  return grpc::Status::OK;
}

grpc::Status ProblemServiceImpl::GetJob(grpc::ServerContext* context,
                                        const v1::GetJobRequest* request, v1::Job* response) {
  if (grpc::Status s = auth_.Check(*context, "deepsearch.v1.ProblemService/GetJob"); !s.ok())
    return s;
  if (request->include_trajectories()) {
    return Invalid(
        "include_trajectories: the learner keeps each problem's summary, not its trajectories");
  }
  absl::StatusOr<Job> job = learner_->jobs().Get(request->job_id());
  if (!job.ok()) return rpc::ToGrpcStatus(job.status());
  *response = JobWithStall(*job, request->include_results(), learner_->stats().stalled_seconds);
  return grpc::Status::OK;
}

grpc::Status ProblemServiceImpl::ListJobs(grpc::ServerContext* context,
                                          const v1::ListJobsRequest* request,
                                          v1::ListJobsResponse* response) {
  if (grpc::Status s = auth_.Check(*context, "deepsearch.v1.ProblemService/ListJobs"); !s.ok())
    return s;
  if (request->page_size() < 0 || request->page_size() > 1000)
    return Invalid(absl::StrCat("page_size must be in [0, 1000]; got ", request->page_size()));
  absl::StatusOr<std::optional<JobState>> filter = JobStateFilterFromProto(request->state_filter());
  if (!filter.ok()) return rpc::ToGrpcStatus(filter.status());
  absl::StatusOr<JobListPage> page =
      learner_->jobs().List(request->page_size(), request->page_token(), *filter);
  if (!page.ok()) return rpc::ToGrpcStatus(page.status());
  const double stalled = learner_->stats().stalled_seconds;
  for (const Job& job : page->jobs) *response->add_jobs() = JobWithStall(job, false, stalled);
  response->set_next_page_token(page->next_page_token);
  return grpc::Status::OK;
}

grpc::Status ProblemServiceImpl::CancelJob(grpc::ServerContext* context,
                                           const v1::CancelJobRequest* request, v1::Job* response) {
  if (grpc::Status s = auth_.Check(*context, "deepsearch.v1.ProblemService/CancelJob"); !s.ok())
    return s;
  absl::StatusOr<Job> job = learner_->Cancel(request->job_id());
  if (!job.ok()) return rpc::ToGrpcStatus(job.status());
  *response = JobToProto(*job, false);
  return grpc::Status::OK;
}

grpc::Status ProblemServiceImpl::WatchJob(grpc::ServerContext* context,
                                          const v1::WatchJobRequest* request,
                                          grpc::ServerWriter<v1::JobEvent>* writer) {
  rpc::StreamLimiter::Slot slot;
  if (grpc::Status s = rpc::AdmitStream(auth_, streams_, *context,
                                        "deepsearch.v1.ProblemService/WatchJob", &slot);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<Job> job = learner_->jobs().Get(request->job_id());
  if (!job.ok()) return rpc::ToGrpcStatus(job.status());
  absl::StatusOr<rpc::StreamLimiter::Slot> watcher = watchers_.Acquire(request->job_id());
  if (!watcher.ok()) return rpc::ToGrpcStatus(Annotate(watcher.status(), "WatchJob"));
  while (true) {
    v1::JobEvent event;
    *event.mutable_job() = JobWithStall(*job, false, learner_->stats().stalled_seconds);
    const bool stalled = event.job().progress().stalled_seconds() > 0;
    if (!writer->Write(event)) return grpc::Status::OK;  // the client went away
    if (IsTerminal(job->state)) return grpc::Status::OK;
    // Wake at least every half second to notice a cancelled call, a shutdown, or a stall
    // that starts or ends (an event then, though the job itself did not change).
    const int64_t seen = job->version;
    while (!context->IsCancelled()) {
      job = learner_->jobs().WaitForChange(request->job_id(), seen,
                                           absl::Now() + absl::Milliseconds(500));
      if (!job.ok()) return rpc::ToGrpcStatus(job.status());
      if (job->version != seen || (learner_->stats().stalled_seconds > 0) != stalled) break;
    }
    if (context->IsCancelled()) return grpc::Status::CANCELLED;
  }
}

}  // namespace deepsearch
