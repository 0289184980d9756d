// In-process stand-ins for the learner and the cache service, for tests of the actor: they
// speak the real gRPC protocol on loopback, record what they receive, and hold their state
// outside the server object, so a test can kill a server and start another on the same port
// with the same state (a peer restart).
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "deepsearch/v1/cache_service.grpc.pb.h"
#include "deepsearch/v1/learner_service.grpc.pb.h"

#include "common/rpc/server.h"
#include "common/rpc/weight_stream.h"

namespace deepsearch::testing {

// What the learner knows; survives server restarts.
struct LearnerState {
  absl::Mutex mu;
  std::deque<v1::Lease> queue ABSL_GUARDED_BY(mu);                         // handed out in order
  std::set<std::string> revoked ABSL_GUARDED_BY(mu);                       // renewals answer false
  std::map<std::string, v1::Trajectory> trajectories ABSL_GUARDED_BY(mu);  // ingested, by id
  int64_t duplicates ABSL_GUARDED_BY(mu) = 0;
  std::vector<std::string> completed ABSL_GUARDED_BY(mu);
  std::vector<v1::LeaseFailure> failures ABSL_GUARDED_BY(mu);
  std::vector<v1::LeaseWorkRequest> lease_requests ABSL_GUARDED_BY(mu);
  int64_t renew_calls ABSL_GUARDED_BY(mu) = 0;
  int64_t batches ABSL_GUARDED_BY(mu) = 0;
  // False: batches are ingested but never acked (the ack is lost, as when the learner dies
  // right after ingesting).
  bool ack ABSL_GUARDED_BY(mu) = true;
};

class FakeLearner final : public v1::LearnerService::Service {
 public:
  explicit FakeLearner(LearnerState* state) : state_(state) {}

  grpc::Status LeaseWork(grpc::ServerContext*, const v1::LeaseWorkRequest* request,
                         v1::LeaseWorkResponse* response) override {
    absl::MutexLock lock(&state_->mu);
    state_->lease_requests.push_back(*request);
    for (int32_t i = 0; i < request->max_leases() && !state_->queue.empty(); ++i) {
      *response->add_leases() = std::move(state_->queue.front());
      state_->queue.pop_front();
    }
    if (response->leases_size() == 0) response->mutable_retry_after()->set_nanos(10'000'000);
    return grpc::Status::OK;
  }

  grpc::Status RenewLease(grpc::ServerContext*, const v1::RenewLeaseRequest* request,
                          v1::RenewLeaseResponse* response) override {
    absl::MutexLock lock(&state_->mu);
    ++state_->renew_calls;
    for (const std::string& id : request->lease_ids()) {
      v1::LeaseRenewal* r = response->add_renewals();
      r->set_lease_id(id);
      r->set_renewed(state_->revoked.count(id) == 0);
      if (!r->renewed()) r->set_reason("cancelled by the test");
    }
    return grpc::Status::OK;
  }

  grpc::Status StreamTrajectories(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::TrajectoryAck, v1::TrajectoryBatch>* stream) override {
    v1::TrajectoryBatch batch;
    while (stream->Read(&batch)) {
      v1::TrajectoryAck ack;
      bool send = false;
      {
        absl::MutexLock lock(&state_->mu);
        ++state_->batches;
        ack.set_sequence(batch.sequence());
        for (const v1::Trajectory& t : batch.trajectories()) {
          if (state_->trajectories.count(t.trajectory_id()) > 0) {
            ++state_->duplicates;
            ack.set_duplicates(ack.duplicates() + 1);
          } else {
            state_->trajectories[t.trajectory_id()] = t;
            ack.set_accepted(ack.accepted() + 1);
          }
        }
        for (const std::string& id : batch.completed_lease_ids()) state_->completed.push_back(id);
        for (const v1::LeaseFailure& f : batch.failed_leases()) state_->failures.push_back(f);
        send = state_->ack;
      }
      if (send && !stream->Write(ack)) break;
    }
    return grpc::Status::OK;
  }

 private:
  LearnerState* state_;
};

struct CacheState {
  absl::Mutex mu;
  std::map<std::string, std::vector<v1::StoredSolution>> stored ABSL_GUARDED_BY(mu);
  std::vector<v1::Solution> puts ABSL_GUARDED_BY(mu);
  std::vector<WeightSet> versions ABSL_GUARDED_BY(mu);  // published, in order
  std::vector<WeightEncoding> sent_encodings ABSL_GUARDED_BY(mu);
  std::vector<v1::SubscribeWeightsRequest> subscriptions ABSL_GUARDED_BY(mu);
};

class FakeCache final : public v1::CacheService::Service {
 public:
  explicit FakeCache(CacheState* state) : state_(state) {}

  grpc::Status PutSolutions(grpc::ServerContext*, const v1::PutSolutionsRequest* request,
                            v1::PutSolutionsResponse* response) override {
    absl::MutexLock lock(&state_->mu);
    for (const v1::Solution& s : request->solutions()) {
      state_->puts.push_back(s);
      v1::PutResult* r = response->add_results();
      r->set_problem_id(s.problem().id());
      r->set_status(v1::PutResult::STATUS_STORED);
    }
    return grpc::Status::OK;
  }

  grpc::Status LookupSolutions(grpc::ServerContext*, const v1::LookupSolutionsRequest* request,
                               v1::LookupSolutionsResponse* response) override {
    absl::MutexLock lock(&state_->mu);
    for (const std::string& id : request->problem_ids()) {
      auto it = state_->stored.find(id);
      if (it == state_->stored.end()) continue;
      v1::ProblemSolutions* p = response->add_problems();
      p->set_problem_id(id);
      for (const v1::StoredSolution& s : it->second) *p->add_solutions() = s;
    }
    return grpc::Status::OK;
  }

  // Sends every published version newer than the subscriber's: as a delta against the
  // version it holds when it accepts deltas and holds the previous one, else in full.
  grpc::Status SubscribeWeights(grpc::ServerContext* context,
                                const v1::SubscribeWeightsRequest* request,
                                grpc::ServerWriter<v1::WeightChunk>* writer) override {
    int64_t have = request->have_version();
    {
      absl::MutexLock lock(&state_->mu);
      state_->subscriptions.push_back(*request);
    }
    while (!context->IsCancelled()) {
      std::vector<EncodedWeights> send;
      {
        absl::MutexLock lock(&state_->mu);
        const WeightSet* base = nullptr;
        for (const WeightSet& w : state_->versions) {
          if (w.version == have) base = &w;
          if (w.version <= have) continue;
          if (request->accept_delta() && base != nullptr) {
            send.push_back(*EncodeDelta(w, *base));
          } else {
            send.push_back(EncodeFull(w));
          }
          state_->sent_encodings.push_back(send.back().encoding);
          base = &w;
          have = w.version;
        }
      }
      for (const EncodedWeights& w : send) {
        if (!rpc::WriteWeightChunks(w, 4096,
                                    [&](const v1::WeightChunk& c) { return writer->Write(c); })) {
          return grpc::Status::OK;
        }
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    return grpc::Status::OK;
  }

 private:
  CacheState* state_;
};

// A lease of the problem "What is 6*7?" (answer 42, graded by the math grader) with a small
// search: width 2, 32-token steps, depth 4, 64 response tokens.
inline v1::Lease SixSevensLease(std::string lease_id, std::string problem_id,
                                v1::LeaseMode mode = v1::LEASE_MODE_SEARCH, int32_t k = 2) {
  v1::Lease l;
  l.set_lease_id(std::move(lease_id));
  l.set_job_id("job-1");
  l.set_mode(mode);
  l.set_attempt(1);
  l.set_num_trajectories(k);
  v1::Problem* p = l.mutable_problem();
  p->set_id(std::move(problem_id));
  p->set_prompt("What is 6*7?");
  p->set_answer("42");
  p->set_task("math");
  v1::SearchParams* s = l.mutable_search();
  s->set_expansion_width(2);
  s->set_step_tokens(32);
  s->set_max_depth(4);
  s->set_max_response_tokens(64);
  s->set_overlong_buffer(16);
  return l;
}

// A server for one fake service; restartable on the same port.
template <typename Service, typename State>
class FakeServer {
 public:
  FakeServer(State* state, std::string service_name)
      : state_(state), name_(std::move(service_name)) {}

  absl::Status Start(int port = 0) {
    service_ = std::make_unique<Service>(state_);
    absl::StatusOr<std::unique_ptr<rpc::GrpcServer>> server = rpc::GrpcServer::Start(
        rpc::ServerOptions{
            .name = "fake", .listen_address = absl::StrCat("127.0.0.1:", port), .rpc = {}},
        {{service_.get(), name_}});
    if (!server.ok()) return server.status();
    server_ = *std::move(server);
    port_ = server_->port();
    return absl::OkStatus();
  }
  void Stop() {
    if (server_ != nullptr) server_->Shutdown(absl::ZeroDuration());
    server_.reset();
    service_.reset();
  }
  int port() const { return port_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  State* state_;
  std::string name_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<rpc::GrpcServer> server_;
  int port_ = 0;
};

}  // namespace deepsearch::testing
