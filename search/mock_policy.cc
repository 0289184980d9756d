#include "search/mock_policy.h"

#include "absl/strings/str_cat.h"

namespace deepsearch {

MockPolicy::MockPolicy(Script script, int64_t weight_version)
    : script_(std::move(script)), weight_version_(weight_version) {}

void MockPolicy::Submit(ExpansionRequest request, ExpansionCallback done) {
  ExpansionResult result;
  std::vector<int32_t> prefix;
  {
    absl::MutexLock lock(&mu_);
    if (request.prefix_handle != 0) {
      const auto it = handles_.find(request.prefix_handle);
      if (it == handles_.end()) {
        result.status =
            absl::NotFoundError(absl::StrCat("unknown prefix handle ", request.prefix_handle));
      } else {
        prefix = it->second;
      }
    }
    prefix.insert(prefix.end(), request.tokens.begin(), request.tokens.end());
    ExpansionRequest recorded = request;
    recorded.prefix_handle = 0;
    recorded.tokens = prefix;
    requests_.push_back(std::move(recorded));
  }
  if (result.status.ok() && request.num_samples < 1) {
    result.status = absl::InvalidArgumentError("num_samples must be >= 1");
  }
  if (result.status.ok()) result.status = request.sampling.Validate();
  if (!result.status.ok()) {
    done(std::move(result));
    return;
  }
  result.prefix_length = static_cast<int64_t>(prefix.size());
  for (int32_t j = 0; j < request.num_samples; ++j) {
    PolicySample sample = script_(prefix, j, request);
    const size_t limit = static_cast<size_t>(request.sampling.max_new_tokens);
    if (sample.tokens.size() > limit) {
      sample.tokens.resize(limit);
      sample.logprobs.resize(limit);
      sample.entropies.resize(limit);
      sample.finish = FinishReason::kLength;
    }
    sample.logprobs.resize(sample.tokens.size(), 0.0f);
    sample.entropies.resize(sample.tokens.size(), 0.0f);
    sample.weight_version = weight_version_;
    std::vector<int32_t> full = prefix;
    full.insert(full.end(), sample.tokens.begin(), sample.tokens.end());
    absl::MutexLock lock(&mu_);
    sample.handle = next_handle_++;
    handles_[sample.handle] = std::move(full);
    result.samples.push_back(std::move(sample));
  }
  done(std::move(result));
}

void MockPolicy::ReleaseHandle(int64_t handle) {
  absl::MutexLock lock(&mu_);
  handles_.erase(handle);
}

std::vector<ExpansionRequest> MockPolicy::requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

int64_t MockPolicy::live_handles() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(handles_.size());
}

}  // namespace deepsearch
