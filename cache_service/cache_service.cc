#include "cache_service/cache_service.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "wire/convert.h"

#include "common/core/logging.h"
#include "common/core/status.h"
#include "common/rpc/status_conversion.h"
#include "common/rpc/weight_stream.h"

namespace deepsearch {
namespace {

grpc::Status Invalid(std::string message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::move(message));
}

grpc::Status TooMuch(std::string message) {
  return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, std::move(message));
}

v1::PutResult::Status ToProto(PutStatus status) {
  switch (status) {
    case PutStatus::kStored:
      return v1::PutResult::STATUS_STORED;
    case PutStatus::kDuplicate:
      return v1::PutResult::STATUS_DUPLICATE;
    case PutStatus::kRejected:
      return v1::PutResult::STATUS_REJECTED;
  }
  return v1::PutResult::STATUS_UNSPECIFIED;
}

// A subscription re-checks cancellation and shutdown this often while idle.
constexpr absl::Duration kPoll = absl::Milliseconds(200);

}  // namespace

grpc::Status CacheServiceImpl::PutSolutions(grpc::ServerContext* context,
                                            const v1::PutSolutionsRequest* request,
                                            v1::PutSolutionsResponse* response) {
  if (grpc::Status s = auth_.Check(*context, "deepsearch.v1.CacheService/PutSolutions"); !s.ok())
    return s;
  if (request->solutions_size() > options_.max_solutions_per_put) {
    return TooMuch(absl::StrCat("PutSolutions: ", request->solutions_size(), " solutions; at most ",
                                options_.max_solutions_per_put,
                                " per call (cache.max_solutions_per_put)"));
  }
  std::vector<SolutionToPut> solutions;
  solutions.reserve(request->solutions_size());
  for (const v1::Solution& s : request->solutions()) {
    SolutionToPut& p = solutions.emplace_back();
    p.problem = ProblemFromProto(s.problem());
    p.response_tokens.assign(s.response_tokens().begin(), s.response_tokens().end());
    p.response_text = s.response_text();
    p.weight_version = s.weight_version();
    p.trajectory_id = s.trajectory_id();
  }
  absl::StatusOr<std::vector<PutOutcome>> outcomes = solutions_->Put(solutions);
  if (!outcomes.ok()) return rpc::ToGrpcStatus(outcomes.status());
  for (const PutOutcome& o : *outcomes) {
    v1::PutResult* r = response->add_results();
    r->set_problem_id(o.problem_id);
    r->set_status(ToProto(o.status));
    r->set_reason(o.reason);
  }
  return grpc::Status::OK;
}

grpc::Status CacheServiceImpl::LookupSolutions(grpc::ServerContext* context,
                                               const v1::LookupSolutionsRequest* request,
                                               v1::LookupSolutionsResponse* response) {
  if (grpc::Status s = auth_.Check(*context, "deepsearch.v1.CacheService/LookupSolutions"); !s.ok())
    return s;
  if (request->problem_ids_size() > options_.max_lookup_problems) {
    return TooMuch(absl::StrCat("LookupSolutions: ", request->problem_ids_size(),
                                " problem ids; at most ", options_.max_lookup_problems,
                                " per call (cache.max_lookup_problems)"));
  }
  if (request->max_per_problem() < 0) {
    return Invalid(
        absl::StrCat("LookupSolutions: max_per_problem ", request->max_per_problem(), " < 0"));
  }
  const std::vector<std::string> ids(request->problem_ids().begin(), request->problem_ids().end());
  absl::StatusOr<std::map<std::string, std::vector<StoredSolutionRecord>>> found =
      solutions_->Lookup(ids, request->max_per_problem());
  if (!found.ok()) return rpc::ToGrpcStatus(found.status());
  for (const auto& [id, records] : *found) {
    v1::ProblemSolutions* p = response->add_problems();
    p->set_problem_id(id);
    for (const StoredSolutionRecord& r : records) {
      v1::StoredSolution* s = p->add_solutions();
      s->mutable_response_tokens()->Assign(r.response_tokens.begin(), r.response_tokens.end());
      s->set_response_text(r.response_text);
      s->set_answer(r.answer);
      s->set_weight_version(r.weight_version);
      s->set_duplicates(r.duplicates);
    }
  }
  return grpc::Status::OK;
}

v1::CacheStats CacheServiceImpl::Stats() const {
  const SolutionStoreStats s = solutions_->stats();
  const WeightStoreStats w = weights_->stats();
  v1::CacheStats stats;
  stats.set_problems(s.problems);
  stats.set_solutions(s.solutions);
  stats.set_duplicates(s.duplicates);
  stats.set_rejected(s.rejected);
  stats.set_lookups(s.lookups);
  stats.set_lookup_hits(s.lookup_hits);
  stats.set_latest_weight_version(w.latest_version);
  stats.set_weight_versions_kept(w.versions_kept);
  stats.set_subscribers(subscribers_.load());
  return stats;
}

CacheServiceCounters CacheServiceImpl::counters() const {
  return {weight_bytes_sent_.load(), weight_versions_sent_.load(), subscribers_.load()};
}

grpc::Status CacheServiceImpl::GetCacheStats(grpc::ServerContext* context,
                                             const v1::GetCacheStatsRequest*,
                                             v1::CacheStats* response) {
  if (grpc::Status s = auth_.Check(*context, "deepsearch.v1.CacheService/GetCacheStats"); !s.ok())
    return s;
  *response = Stats();
  return grpc::Status::OK;
}

grpc::Status CacheServiceImpl::PublishWeights(grpc::ServerContext* context,
                                              grpc::ServerReader<v1::WeightChunk>* reader,
                                              v1::PublishWeightsResponse* response) {
  rpc::StreamLimiter::Slot slot;
  if (grpc::Status s = rpc::AdmitStream(auth_, streams_, *context,
                                        "deepsearch.v1.CacheService/PublishWeights", &slot);
      !s.ok()) {
    return s;
  }
  rpc::WeightChunkAssembler assembler(static_cast<uint64_t>(options_.max_weight_bytes));
  v1::WeightChunk chunk;
  uint64_t received = 0;
  std::optional<EncodedWeights> encoded;
  while (reader->Read(&chunk)) {
    if (encoded.has_value()) {
      return Invalid(absl::StrCat("PublishWeights: a chunk after the trailer of version ",
                                  encoded->version, "; one version per call"));
    }
    if (chunk.has_data()) received += chunk.data().size();
    if (absl::Status s = assembler.Add(chunk); !s.ok()) {
      return rpc::ToGrpcStatus(Annotate(s, "PublishWeights"));
    }
    if (assembler.complete()) encoded = assembler.Take();
  }
  if (context->IsCancelled()) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "PublishWeights: cancelled by the client");
  }
  if (!encoded.has_value()) {
    return Invalid(assembler.in_progress()
                       ? absl::StrCat("PublishWeights: the stream ended after ", received,
                                      " data bytes, before the trailer; nothing was stored")
                       : "PublishWeights: the stream ended without a weight version");
  }
  const int64_t version = encoded->version;
  const int64_t bytes = static_cast<int64_t>(encoded->data.size());
  const bool by_file = encoded->encoding == WeightEncoding::kFile;
  if (absl::Status s = weights_->Publish(*std::move(encoded)); !s.ok()) {
    log::Warning("cache: refused weight version {}: {}", version, s.message());
    return rpc::ToGrpcStatus(s);
  }
  if (by_file) {
    log::Info("cache: stored weight version {} (a file handed over by reference)", version);
  } else {
    log::Info("cache: stored weight version {} ({} bytes received)", version, bytes);
  }
  response->set_version(version);
  response->set_bytes_received(received);
  return grpc::Status::OK;
}

bool CacheServiceImpl::Send(const EncodedWeights& encoded,
                            grpc::ServerWriter<v1::WeightChunk>* writer) {
  const bool ok =
      rpc::WriteWeightChunks(encoded, static_cast<size_t>(options_.chunk_bytes),
                             [&](const v1::WeightChunk& c) { return writer->Write(c); });
  if (ok) {
    weight_bytes_sent_ += static_cast<int64_t>(encoded.data.size());
    ++weight_versions_sent_;
  }
  return ok;
}

grpc::Status CacheServiceImpl::SubscribeWeights(grpc::ServerContext* context,
                                                const v1::SubscribeWeightsRequest* request,
                                                grpc::ServerWriter<v1::WeightChunk>* writer) {
  rpc::StreamLimiter::Slot slot;
  if (grpc::Status s = rpc::AdmitStream(auth_, streams_, *context,
                                        "deepsearch.v1.CacheService/SubscribeWeights", &slot);
      !s.ok()) {
    return s;
  }
  if (request->have_version() < 0) {
    return Invalid(
        absl::StrCat("SubscribeWeights: have_version ", request->have_version(), " < 0"));
  }
  ++subscribers_;
  const std::string who =
      request->subscriber_id().empty() ? context->peer() : request->subscriber_id();
  log::Info("cache: {} subscribed (holds version {}{})", who, request->have_version(),
            request->accept_file() ? "; takes file references" : "");
  int64_t have = request->have_version();
  grpc::Status result = grpc::Status::OK;
  while (!context->IsCancelled() && !weights_->closed()) {
    const int64_t latest = weights_->WaitNewer(have, absl::Now() + kPoll);
    if (latest <= have) continue;
    // The newest version only: versions published while this subscriber was busy are skipped.
    absl::StatusOr<std::shared_ptr<const EncodedWeights>> encoded =
        request->accept_file() ? weights_->FileReference(latest)
                               : weights_->Encoded(latest, request->accept_delta() ? have : 0);
    if (!encoded.ok()) {
      // Pruned meanwhile: a newer one exists, send that instead.
      if (absl::IsNotFound(encoded.status()) && weights_->latest_version() > latest) continue;
      result = rpc::ToGrpcStatus(encoded.status());
      break;
    }
    if (!Send(**encoded, writer)) break;  // the subscriber went away
    have = latest;
  }
  --subscribers_;
  log::Info("cache: {} unsubscribed at version {}", who, have);
  return result;
}

grpc::Status CacheServiceImpl::GetWeights(grpc::ServerContext* context,
                                          const v1::GetWeightsRequest* request,
                                          grpc::ServerWriter<v1::WeightChunk>* writer) {
  rpc::StreamLimiter::Slot slot;
  if (grpc::Status s = rpc::AdmitStream(auth_, streams_, *context,
                                        "deepsearch.v1.CacheService/GetWeights", &slot);
      !s.ok()) {
    return s;
  }
  if (request->version() < 0 || request->base_version() < 0) {
    return Invalid("GetWeights: version and base_version must be >= 0");
  }
  const int64_t version = request->version() == 0 ? weights_->latest_version() : request->version();
  if (version == 0) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "GetWeights: no weight version stored yet");
  }
  absl::StatusOr<std::shared_ptr<const EncodedWeights>> encoded =
      request->accept_file() ? weights_->FileReference(version)
                             : weights_->Encoded(version, request->base_version());
  if (!encoded.ok()) return rpc::ToGrpcStatus(Annotate(encoded.status(), "GetWeights"));
  if (!Send(**encoded, writer)) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "GetWeights: the stream broke");
  }
  return grpc::Status::OK;
}

}  // namespace deepsearch
