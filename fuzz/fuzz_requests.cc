// Bytes as request messages, decoded as the handlers decode them: the first byte picks the
// message, the rest is its wire encoding. LearnerService.StreamTrajectories' trajectories,
// ProblemService.SubmitProblemSet and ListJobs, CacheService.PutSolutions and
// LookupSolutions.
#include <cstddef>
#include <cstdint>

#include "deepsearch/v1/cache_service.pb.h"
#include "deepsearch/v1/learner_service.pb.h"
#include "deepsearch/v1/problem_service.pb.h"
#include "wire/convert.h"

#include "learner/learner_convert.h"

namespace {

template <typename Message>
bool Parse(const uint8_t* data, size_t size, Message& m) {
  return m.ParseFromArray(data, static_cast<int>(size));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace v1 = deepsearch::v1;
  if (size == 0) return 0;
  const uint8_t which = data[0] % 5;
  ++data;
  --size;
  switch (which) {
    case 0: {
      v1::TrajectoryBatch batch;
      if (!Parse(data, size, batch)) return 0;
      for (const v1::Trajectory& t : batch.trajectories()) (void)deepsearch::TrajectoryFromProto(t);
      break;
    }
    case 1: {
      v1::SubmitProblemSetRequest r;
      if (!Parse(data, size, r)) return 0;
      (void)deepsearch::JobKindFromProto(r.kind());
      (void)deepsearch::JobOptionsFromProto(r.options());
      for (const v1::Problem& p : r.problems()) (void)deepsearch::ProblemFromProto(p);
      break;
    }
    case 2: {
      v1::ListJobsRequest r;
      if (!Parse(data, size, r)) return 0;
      (void)deepsearch::JobStateFilterFromProto(r.state_filter());
      break;
    }
    case 3: {
      v1::PutSolutionsRequest r;
      if (!Parse(data, size, r)) return 0;
      for (const v1::Solution& s : r.solutions()) (void)deepsearch::ProblemFromProto(s.problem());
      break;
    }
    default: {
      v1::LookupSolutionsRequest r;
      (void)Parse(data, size, r);
      break;
    }
  }
  return 0;
}
