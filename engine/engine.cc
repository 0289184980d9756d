// The engine's lifecycle: creation, submission, weight swaps, the loop and its statistics.
// The scheduling of one iteration (admission, prefill, decode, preemption) is engine_step.cc.
#include "engine/engine.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/engine_internal.h"

#include "common/core/logging.h"
#include "common/core/status.h"

namespace deepsearch {

absl::StatusOr<std::unique_ptr<InferenceEngine>> InferenceEngine::Create(
    std::unique_ptr<Qwen2Model> model, int64_t weight_version, EngineOptions options) {
  if (model == nullptr) return absl::InvalidArgumentError("engine: no model");
  if (options.max_batch < 1) return absl::InvalidArgumentError("engine: max_batch must be >= 1");
  if (options.max_step_tokens < options.max_batch) {
    return absl::InvalidArgumentError(
        absl::StrCat("engine: max_step_tokens (", options.max_step_tokens,
                     ") must be at least max_batch (", options.max_batch, ")"));
  }
  const KvCache probe = model->NewCache(1, 1);
  const int64_t max_blocks = options.kv_budget_bytes / probe.BytesPerBlock();
  if (max_blocks < 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("engine: kv_budget_bytes ", options.kv_budget_bytes,
                     " holds fewer than 4 KV blocks of ", probe.BytesPerBlock(), " bytes"));
  }
  return std::unique_ptr<InferenceEngine>(
      new InferenceEngine(std::move(model), weight_version, std::move(options)));
}

InferenceEngine::InferenceEngine(std::unique_ptr<Qwen2Model> model, int64_t weight_version,
                                 EngineOptions options)
    : options_(std::move(options)),
      config_(model->config()),
      model_options_(model->options()),
      vocab_limit_(options_.vocab_limit > 0 && options_.vocab_limit <= model->config().vocab_size
                       ? options_.vocab_limit
                       : model->config().vocab_size) {
  MetricsRegistry& m = options_.metrics != nullptr ? *options_.metrics : MetricsRegistry::Default();
  tokens_sampled_metric_ =
      m.GetCounter("deepsearch_engine_tokens_sampled_total", "Tokens sampled by the engine");
  tokens_computed_metric_ = m.GetCounter("deepsearch_engine_tokens_computed_total",
                                         "Positions whose KV the engine computed");
  prefix_hits_metric_ =
      m.GetCounter("deepsearch_prefix_cache_hits_total", "Prefix-cache lookups that matched");
  tokens_reused_metric_ = m.GetCounter("deepsearch_prefix_cache_tokens_reused_total",
                                       "Prefix positions served from the cache");
  evictions_metric_ =
      m.GetCounter("deepsearch_prefix_cache_evictions_total", "Prefix-cache entries evicted");
  preemptions_metric_ =
      m.GetCounter("deepsearch_engine_preemptions_total", "Requests preempted for KV space");
  kv_bytes_metric_ = m.GetGauge("deepsearch_engine_kv_bytes_in_use", "Bytes of KV blocks in use");
  cache_bytes_metric_ =
      m.GetGauge("deepsearch_prefix_cache_bytes_held", "Bytes of KV blocks the prefix cache holds");
  batch_metric_ = m.GetHistogram("deepsearch_engine_decode_batch", "Samples per decode step",
                                 ExponentialBuckets(1, 2, 10));

  const int64_t block_bytes = model->NewCache(1, 1).BytesPerBlock();
  const int64_t max_blocks = options_.kv_budget_bytes / block_bytes;
  kv_ = std::make_unique<KvCache>(model->NewCache(std::min<int64_t>(256, max_blocks), max_blocks));
  cache_refs_ = std::make_unique<CacheRefs>(kv_.get());
  current_version_ = weight_version;
  radix_[weight_version] = std::make_unique<RadixCache>(cache_refs_.get(), KvCache::kBlock);
  models_[weight_version] = std::move(model);
  local_.kv_bytes_budget = max_blocks * block_bytes;
  local_.weight_version = weight_version;
  {
    absl::MutexLock lock(&mu_);
    newest_version_ = weight_version;
    stats_ = local_;
  }
  thread_ = std::thread([this] { Loop(); });
}

InferenceEngine::~InferenceEngine() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void InferenceEngine::Submit(ExpansionRequest request, ExpansionCallback done) {
  auto r = std::make_unique<Request>();
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    if (stop_) {
      status = absl::CancelledError("engine is shutting down");
    } else if (request.prefix_handle != 0) {
      const auto it = handles_.find(request.prefix_handle);
      if (it == handles_.end()) {
        status = absl::NotFoundError(
            absl::StrCat("unknown or released prefix handle ", request.prefix_handle));
      } else {
        r->prefix = *it->second.tokens;
      }
    }
  }
  r->prefix.insert(r->prefix.end(), request.tokens.begin(), request.tokens.end());
  if (status.ok()) status = request.sampling.Validate();
  if (status.ok() && (request.num_samples < 1 || request.num_samples > options_.max_batch)) {
    status = absl::InvalidArgumentError(absl::StrCat(
        "num_samples must be in [1, ", options_.max_batch, "], got ", request.num_samples));
  }
  if (status.ok() && r->prefix.empty()) status = absl::InvalidArgumentError("empty prefix");
  if (status.ok() && !request.sampling.stop_strings.empty() && !options_.token_bytes) {
    status = absl::InvalidArgumentError("stop strings need the engine's token_bytes");
  }
  if (status.ok()) {
    for (int32_t t : r->prefix) {
      if (t < 0 || t >= config_.vocab_size) {
        status = absl::InvalidArgumentError(
            absl::StrCat("prefix token ", t, " out of range [0, ", config_.vocab_size, ")"));
        break;
      }
    }
  }
  const int64_t longest = static_cast<int64_t>(r->prefix.size()) + request.sampling.max_new_tokens;
  if (status.ok() && longest > config_.max_position_embeddings) {
    status = absl::InvalidArgumentError(absl::StrCat(
        "prefix (", r->prefix.size(), ") + max_new_tokens (", request.sampling.max_new_tokens,
        ") exceeds the model's ", config_.max_position_embeddings, " positions"));
  }
  if (!status.ok()) {
    done(ExpansionResult{status, static_cast<int64_t>(r->prefix.size()), {}});
    return;
  }
  r->request = std::move(request);
  r->done = std::move(done);
  absl::MutexLock lock(&mu_);
  r->order = next_order_++;
  ++outstanding_;
  incoming_.push_back(std::move(r));
}

void InferenceEngine::ReleaseHandle(int64_t handle) {
  absl::MutexLock lock(&mu_);
  handles_.erase(handle);
}

int64_t InferenceEngine::weight_version() const {
  absl::MutexLock lock(&mu_);
  return newest_version_;
}

absl::Status InferenceEngine::SwapWeights(std::unique_ptr<Qwen2Model> model, int64_t version) {
  if (model == nullptr) return absl::InvalidArgumentError("SwapWeights: no model");
  if (absl::Status same = config_.CheckSameArchitecture(model->config()); !same.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("SwapWeights: ", same.message()));
  }
  if (model->options().dtype != model_options_.dtype ||
      model->options().device != model_options_.device) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SwapWeights: the new model is ", std::string(c10::toString(model->options().dtype)),
        " on ", model->options().device.str(), ", the engine runs ",
        std::string(c10::toString(model_options_.dtype)), " on ", model_options_.device.str()));
  }
  absl::MutexLock lock(&mu_);
  if (version <= newest_version_) {
    return absl::InvalidArgumentError(
        absl::StrCat("SwapWeights: version ", version, " is not newer than ", newest_version_));
  }
  newest_version_ = version;
  pending_swaps_[version] = std::move(model);
  return absl::OkStatus();
}

EngineStats InferenceEngine::stats() const {
  absl::MutexLock lock(&mu_);
  EngineStats s = stats_;
  s.live_handles = static_cast<int64_t>(handles_.size());
  return s;
}

void InferenceEngine::WaitIdle() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int64_t* outstanding) { return *outstanding == 0; }, &outstanding_));
}

void InferenceEngine::Loop() {
  for (;;) {
    const bool busy = !waiting_.empty() || !active_.empty();
    {
      absl::MutexLock lock(&mu_);
      if (!busy) {
        auto has_work = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
          return stop_ || !incoming_.empty() || !pending_swaps_.empty();
        };
        mu_.Await(absl::Condition(&has_work));
      }
      if (stop_) break;
    }
    TakeIncoming();
    ApplySwap();
    Iterate();
    RetireOldVersions();
    PublishStats();
  }
  // Shutting down: every request still pending fails.
  std::deque<std::unique_ptr<Request>> left;
  {
    absl::MutexLock lock(&mu_);
    left.swap(incoming_);
  }
  for (auto& r : left) Fail(std::move(r), absl::CancelledError("engine stopped"));
  for (auto& r : waiting_) Fail(std::move(r), absl::CancelledError("engine stopped"));
  waiting_.clear();
  for (auto& r : active_) {
    if (!r->finished) FinishRequest(r.get(), absl::CancelledError("engine stopped"));
  }
  active_.clear();
}

void InferenceEngine::TakeIncoming() {
  absl::MutexLock lock(&mu_);
  while (!incoming_.empty()) {
    waiting_.push_back(std::move(incoming_.front()));
    incoming_.pop_front();
  }
}

void InferenceEngine::ApplySwap() {
  std::map<int64_t, std::unique_ptr<Qwen2Model>> swaps;
  {
    absl::MutexLock lock(&mu_);
    swaps.swap(pending_swaps_);
  }
  if (swaps.empty()) return;
  for (auto& [version, model] : swaps) {
    models_[version] = std::move(model);
    radix_[version] = std::make_unique<RadixCache>(cache_refs_.get(), KvCache::kBlock);
    current_version_ = version;
  }
  local_.weight_version = current_version_;
  log::Info("engine: now serving weight version {}", current_version_);
  if (options_.swap_policy == SwapPolicy::kAbortInFlight) {
    // Restart everything in flight on the new weights (newest first, so the requeued
    // requests keep their arrival order at the front of the queue).
    std::vector<Request*> old;
    for (auto& r : active_) {
      if (!r->finished && r->version != current_version_) old.push_back(r.get());
    }
    std::sort(old.begin(), old.end(), [](Request* a, Request* b) { return a->order > b->order; });
    for (Request* r : old) Preempt(r);
  }
}

void InferenceEngine::RetireOldVersions() {
  for (auto it = models_.begin(); it != models_.end();) {
    const int64_t version = it->first;
    const bool used = std::any_of(active_.begin(), active_.end(), [&](const auto& r) {
      return !r->finished && r->version == version;
    });
    if (version == current_version_ || used) {
      ++it;
      continue;
    }
    radix_.erase(version);  // drops the old version's cached blocks
    it = models_.erase(it);
  }
}

bool InferenceEngine::Iterate() {
  if (absl::Status s = RunPrefill(); !s.ok()) log::Error("engine: prefill failed: {}", s.message());
  if (absl::Status s = RunDecode(); !s.ok()) log::Error("engine: decode failed: {}", s.message());
  // Sweep requests whose callbacks ran.
  active_.erase(
      std::remove_if(active_.begin(), active_.end(), [](const auto& r) { return r->finished; }),
      active_.end());
  return true;
}

void InferenceEngine::PublishStats() {
  int64_t held = 0;
  for (const auto& [version, radix] : radix_) held += radix->stats().blocks_held;
  local_.kv_bytes_in_use = kv_->BytesInUse();
  local_.cache_bytes_held = held * kv_->BytesPerBlock();
  kv_bytes_metric_->Set(static_cast<double>(local_.kv_bytes_in_use));
  cache_bytes_metric_->Set(static_cast<double>(local_.cache_bytes_held));
  absl::MutexLock lock(&mu_);
  stats_ = local_;
}

}  // namespace deepsearch
