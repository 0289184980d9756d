// The gRPC adapters of the learner: LearnerService (actors lease work and stream
// trajectories) and ProblemService (clients submit and follow jobs). They check the bearer
// token and the caller's role (common/rpc/auth.h) and the per-caller limits (RESOURCE_EXHAUSTED
// naming the config key), translate messages (learner_convert.h) and call the Learner; no
// algorithm lives here. Malformed input is answered with INVALID_ARGUMENT naming the field (a
// malformed trajectory is rejected in the ack, the rest of its batch is ingested); nothing a client
// sends can crash the server.
#pragma once

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/server_callback.h>

#include "absl/status/statusor.h"
#include "deepsearch/v1/learner_service.grpc.pb.h"
#include "deepsearch/v1/problem_service.grpc.pb.h"

#include "common/rpc/server.h"
#include "common/rpc/stream_limiter.h"
#include "learner/learner.h"

namespace deepsearch {

// StreamTrajectories is served raw (the callback API on bytes): the sync API reports a batch
// that does not parse exactly like the end of the stream, so the handler parses each batch
// itself and answers INVALID_ARGUMENT for one that does not.
class LearnerServiceImpl final
    : public v1::LearnerService::WithRawCallbackMethod_StreamTrajectories<
          v1::LearnerService::Service> {
 public:
  // `streams`: the process's per-caller stream limit (not owned; null: none).
  LearnerServiceImpl(Learner* learner, rpc::ServerAuth auth, rpc::StreamLimiter* streams = nullptr)
      : learner_(learner), auth_(std::move(auth)), streams_(streams) {}

  grpc::Status LeaseWork(grpc::ServerContext* context, const v1::LeaseWorkRequest* request,
                         v1::LeaseWorkResponse* response) override;
  grpc::Status RenewLease(grpc::ServerContext* context, const v1::RenewLeaseRequest* request,
                          v1::RenewLeaseResponse* response) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* StreamTrajectories(
      grpc::CallbackServerContext* context) override;

  // One batch: its ack, or INVALID_ARGUMENT for a batch that ends the stream.
  absl::StatusOr<v1::TrajectoryAck> IngestBatch(const v1::TrajectoryBatch& batch);

 private:
  Learner* learner_;
  rpc::ServerAuth auth_;
  rpc::StreamLimiter* streams_;
};

class ProblemServiceImpl final : public v1::ProblemService::Service {
 public:
  // `streams` as above; the watchers of each job are capped at learner.max_watchers_per_job.
  ProblemServiceImpl(Learner* learner, rpc::ServerAuth auth, rpc::StreamLimiter* streams = nullptr);

  grpc::Status SubmitProblemSet(grpc::ServerContext* context,
                                const v1::SubmitProblemSetRequest* request,
                                v1::Job* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                      v1::Job* response) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  grpc::Status CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request,
                         v1::Job* response) override;
  grpc::Status WatchJob(grpc::ServerContext* context, const v1::WatchJobRequest* request,
                        grpc::ServerWriter<v1::JobEvent>* writer) override;

 private:
  Learner* learner_;
  rpc::ServerAuth auth_;
  rpc::StreamLimiter* streams_;
  rpc::StreamLimiter watchers_;
};

}  // namespace deepsearch
