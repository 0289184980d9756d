#include "engine/engine.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

#include "common/core/logging.h"
#include "common/core/status.h"

namespace deepsearch {
namespace {

int64_t BlocksFor(int64_t length) { return (length + KvCache::kBlock - 1) / KvCache::kBlock; }

}  // namespace

// One sample of a request, from its first token to its finish.
struct InferenceEngine::Sample {
  Request* request = nullptr;
  int32_t index = 0;
  KvCache::SequenceId sequence = 0;
  Rng rng{0};
  std::optional<StopRule> stop;
  PolicySample out;
  int32_t pending = -1;  // the last sampled token, not yet fed to the model
  bool done = false;
};

// One expansion request, from submission to its callback.
struct InferenceEngine::Request {
  ExpansionRequest request;
  ExpansionCallback done;
  std::vector<int32_t> prefix;
  int64_t order = 0;    // arrival order
  int64_t version = 0;  // the weights it runs on, once started
  bool started = false;
  KvCache::SequenceId sequence = 0;  // the prefix's sequence while prefilling
  int64_t computed = 0;              // prefix positions with KV
  std::vector<std::unique_ptr<Sample>> samples;
  int32_t remaining = 0;
  bool finished = false;
};

// Block references of the radix caches, held in the KV pool.
class InferenceEngine::CacheRefs final : public BlockRefs {
 public:
  explicit CacheRefs(KvCache* kv) : kv_(kv) {}
  void Retain(absl::Span<const int32_t> blocks) override { kv_->RetainBlocks(blocks); }
  void Release(absl::Span<const int32_t> blocks) override { kv_->ReleaseBlocks(blocks); }

 private:
  KvCache* kv_;
};

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

bool InferenceEngine::MakeRoom() {
  // Older versions' entries go first; then the current version's least recently used.
  for (auto& [version, radix] : radix_) {
    if (version != current_version_ && radix->EvictLeastRecentlyUsed()) {
      ++local_.evictions;
      evictions_metric_->Increment();
      return true;
    }
  }
  auto it = radix_.find(current_version_);
  if (it != radix_.end() && it->second->EvictLeastRecentlyUsed()) {
    ++local_.evictions;
    evictions_metric_->Increment();
    return true;
  }
  return false;
}

void InferenceEngine::Preempt(Request* r) {
  // Drop its work and queue it again, at the position its arrival order gives it.
  if (r->sequence != 0) kv_->Release(r->sequence);
  for (auto& s : r->samples) {
    if (s->sequence != 0) kv_->Release(s->sequence);
  }
  auto owned =
      std::find_if(active_.begin(), active_.end(), [&](const auto& p) { return p.get() == r; });
  DS_CHECK(owned != active_.end()) << "preempting a request that is not active";
  std::unique_ptr<Request> request = std::move(*owned);
  active_.erase(owned);
  request->started = false;
  request->sequence = 0;
  request->computed = 0;
  request->samples.clear();
  request->remaining = 0;
  auto pos = std::find_if(waiting_.begin(), waiting_.end(),
                          [&](const auto& w) { return w->order > request->order; });
  waiting_.insert(pos, std::move(request));
  ++local_.preemptions;
  preemptions_metric_->Increment();
}

absl::Status InferenceEngine::StepWithRoom(int64_t version, std::vector<StepInput>& inputs,
                                           at::Tensor* logits) {
  for (;;) {
    int64_t needed = 0;
    for (const StepInput& in : inputs)
      needed += kv_->BlocksNeeded(in.sequence, static_cast<int64_t>(in.tokens.size()));
    while (kv_->AvailableBlocks() < needed && MakeRoom()) {
    }
    if (kv_->AvailableBlocks() >= needed) break;
    // Still no room: preempt the most recently started request of this step (not the only one).
    Request* victim = nullptr;
    for (auto& r : active_) {
      if (r->finished || r->version != version) continue;
      if (victim == nullptr || r->order > victim->order) victim = r.get();
    }
    const int64_t running =
        std::count_if(active_.begin(), active_.end(), [](const auto& r) { return !r->finished; });
    if (victim == nullptr || running <= 1) {
      // One request alone does not fit: it can never run under this budget.
      if (victim != nullptr) {
        FinishRequest(victim, absl::ResourceExhaustedError(
                                  absl::StrCat("the KV budget (", local_.kv_bytes_budget,
                                               " bytes) cannot hold this request")));
      }
      return absl::ResourceExhaustedError("KV budget exhausted");
    }
    // Drop the victim's inputs from this step, then retry.
    std::vector<KvCache::SequenceId> gone;
    if (victim->sequence != 0) gone.push_back(victim->sequence);
    for (auto& s : victim->samples) gone.push_back(s->sequence);
    Preempt(victim);
    inputs.erase(std::remove_if(inputs.begin(), inputs.end(),
                                [&](const StepInput& in) {
                                  return std::find(gone.begin(), gone.end(), in.sequence) !=
                                         gone.end();
                                }),
                 inputs.end());
    if (inputs.empty()) return absl::OkStatus();
  }
  if (inputs.empty()) return absl::OkStatus();
  // Invariant 1 (ARCHITECTURE §4), checked at the one place KV meets weights: every sequence
  // of a step was produced by the weights that step runs on.
  for (const StepInput& in : inputs) {
    DS_CHECK(kv_->WeightVersion(in.sequence) == version)
        << "KV of weight version " << kv_->WeightVersion(in.sequence) << " in a step on version "
        << version;
  }
  DS_ASSIGN_OR_RETURN(*logits, models_.at(version)->Step(*kv_, inputs));
  int64_t fed = 0;
  for (const StepInput& in : inputs) fed += static_cast<int64_t>(in.tokens.size());
  local_.tokens_computed += fed;
  tokens_computed_metric_->Increment(static_cast<double>(fed));
  ++local_.steps;
  return absl::OkStatus();
}

absl::Status InferenceEngine::RunPrefill() {
  int64_t live = 0;   // samples decoding this iteration
  int64_t slots = 0;  // batch slots taken by started requests
  for (const auto& r : active_) {
    if (r->finished) continue;
    slots += r->request.num_samples;
    for (const auto& s : r->samples) live += (!s->done && s->pending >= 0) ? 1 : 0;
  }
  int64_t budget = options_.max_step_tokens - live;
  // Prefill chunks, per weight version: the request and whether the chunk completes it.
  std::map<int64_t, std::vector<StepInput>> inputs;
  std::map<int64_t, std::vector<std::pair<Request*, bool>>> owners;
  auto add_chunk = [&](Request* r) {
    const int64_t left = static_cast<int64_t>(r->prefix.size()) - r->computed;
    const int64_t chunk = std::min(left, budget);
    if (chunk <= 0) return false;
    inputs[r->version].push_back(
        {r->sequence,
         absl::Span<const int32_t>(r->prefix.data() + r->computed, static_cast<size_t>(chunk))});
    owners[r->version].push_back({r, chunk == left});
    budget -= chunk;
    return chunk == left;
  };
  // Unfinished prefills first, then new requests in arrival order.
  bool blocked = false;
  for (auto& r : active_) {
    if (!r->finished && r->sequence != 0 && r->computed < static_cast<int64_t>(r->prefix.size())) {
      if (!add_chunk(r.get())) blocked = true;
    }
  }
  while (!blocked && budget > 0 && !waiting_.empty()) {
    Request* r = waiting_.front().get();
    if (r->request.min_weight_version > current_version_) break;  // waits for newer weights
    if (slots > 0 && slots + r->request.num_samples > options_.max_batch) break;
    r->started = true;
    r->version = current_version_;
    RadixCache::Match match;
    if (options_.prefix_cache) {
      // At least the last prefix token is recomputed: its logits start the samples.
      match = radix_.at(r->version)->Lookup(r->prefix, static_cast<int64_t>(r->prefix.size()) - 1);
      ++local_.prefix_lookups;
      if (match.length > 0) {
        ++local_.prefix_hits;
        local_.tokens_reused += match.length;
        prefix_hits_metric_->Increment();
        tokens_reused_metric_->Increment(static_cast<double>(match.length));
      }
    }
    r->sequence = match.length > 0 ? kv_->CreateFromBlocks(match.blocks, match.length, r->version)
                                   : kv_->Create(r->version);
    r->computed = match.length;
    slots += r->request.num_samples;
    active_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
    if (!add_chunk(r)) break;  // a chunked prefill: the budget is spent
  }
  for (auto& [version, version_inputs] : inputs) {
    at::Tensor logits;
    std::vector<StepInput>& step = version_inputs;
    DS_RETURN_IF_ERROR(StepWithRoom(version, step, &logits));
    if (step.empty()) continue;
    // Owners of the inputs that survived (preemption may have removed some), row by row.
    int64_t row = 0;
    for (const auto& [r, completes] : owners[version]) {
      if (row >= static_cast<int64_t>(step.size()) ||
          step[static_cast<size_t>(row)].sequence != r->sequence)
        continue;
      const int64_t fed = static_cast<int64_t>(step[static_cast<size_t>(row)].tokens.size());
      r->computed += fed;
      local_.prefill_tokens += fed;
      if (completes) StartSamples(r, logits, row);
      ++row;
    }
  }
  return absl::OkStatus();
}

void InferenceEngine::StartSamples(Request* r, const at::Tensor& logits, int64_t row) {
  const Rng root(r->request.sampling.seed);
  std::vector<SampleSlot> slots;
  for (int32_t j = 0; j < r->request.num_samples; ++j) {
    auto s = std::make_unique<Sample>();
    s->request = r;
    s->index = j;
    s->sequence = j == 0 ? r->sequence : kv_->Fork(r->sequence);
    s->rng = root.Fork(static_cast<uint64_t>(j));
    s->stop.emplace(r->request.sampling, options_.eos_token_ids, options_.token_bytes);
    s->out.weight_version = r->version;
    r->samples.push_back(std::move(s));
  }
  r->sequence = 0;  // sample 0 owns it now
  r->remaining = r->request.num_samples;
  for (auto& s : r->samples) slots.push_back({row, &r->request.sampling, &s->rng});
  const std::vector<SampledToken> tokens = SampleRows(logits, slots, vocab_limit_);
  for (size_t j = 0; j < tokens.size(); ++j) Advance(r->samples[j].get(), tokens[j]);
}

void InferenceEngine::Advance(Sample* s, const SampledToken& token) {
  s->out.tokens.push_back(token.token);
  s->out.logprobs.push_back(token.logprob);
  s->out.entropies.push_back(token.entropy);
  ++local_.tokens_sampled;
  tokens_sampled_metric_->Increment();
  if (const std::optional<FinishReason> finish = s->stop->Push(token.token)) {
    s->out.finish = *finish;
    s->pending = -1;
    FinishSample(s);
  } else {
    s->pending = token.token;
  }
}

absl::Status InferenceEngine::RunDecode() {
  std::map<int64_t, std::vector<Sample*>> by_version;
  for (auto& r : active_) {
    if (r->finished) continue;
    for (auto& s : r->samples) {
      if (!s->done && s->pending >= 0) by_version[r->version].push_back(s.get());
    }
  }
  for (auto& [version, samples] : by_version) {
    std::vector<StepInput> inputs;
    for (Sample* s : samples)
      inputs.push_back({s->sequence, absl::Span<const int32_t>(&s->pending, 1)});
    at::Tensor logits;
    DS_RETURN_IF_ERROR(StepWithRoom(version, inputs, &logits));
    if (inputs.empty()) continue;
    batch_metric_->Observe(static_cast<double>(inputs.size()));
    local_.decode_tokens += static_cast<int64_t>(inputs.size());
    // The samples that survived preemption, in input order.
    std::vector<Sample*> stepped;
    std::vector<SampleSlot> slots;
    size_t k = 0;
    for (Sample* s : samples) {
      if (k < inputs.size() && inputs[k].sequence == s->sequence) {
        slots.push_back(
            {static_cast<int64_t>(stepped.size()), &s->request->request.sampling, &s->rng});
        stepped.push_back(s);
        ++k;
      }
    }
    const std::vector<SampledToken> tokens = SampleRows(logits, slots, vocab_limit_);
    for (size_t j = 0; j < stepped.size(); ++j) Advance(stepped[j], tokens[j]);
  }
  return absl::OkStatus();
}

void InferenceEngine::FinishSample(Sample* s) {
  Request* r = s->request;
  // The KV covers the prefix and every token but the last (never fed to the model).
  const int64_t length = kv_->Length(s->sequence);
  auto tokens = std::make_shared<std::vector<int32_t>>(r->prefix);
  tokens->insert(tokens->end(), s->out.tokens.begin(), s->out.tokens.end());
  if (options_.prefix_cache) {
    const std::vector<KvCache::BlockId>& blocks = kv_->Blocks(s->sequence);
    radix_.at(r->version)
        ->Insert(absl::Span<const int32_t>(tokens->data(), static_cast<size_t>(length)),
                 absl::Span<const int32_t>(blocks.data(), static_cast<size_t>(BlocksFor(length))));
  }
  kv_->Release(s->sequence);
  s->sequence = 0;
  s->done = true;
  {
    absl::MutexLock lock(&mu_);
    s->out.handle = next_handle_++;
    handles_[s->out.handle] = Handle{std::move(tokens)};
    while (static_cast<int64_t>(handles_.size()) > options_.max_handles)
      handles_.erase(handles_.begin());
  }
  ++local_.samples_done;
  if (--r->remaining == 0) FinishRequest(r, absl::OkStatus());
}

void InferenceEngine::FinishRequest(Request* r, absl::Status status) {
  if (r->finished) return;
  r->finished = true;
  if (r->sequence != 0) kv_->Release(r->sequence);
  r->sequence = 0;
  ExpansionResult result;
  result.status = status;
  result.prefix_length = static_cast<int64_t>(r->prefix.size());
  if (status.ok()) {
    for (auto& s : r->samples) result.samples.push_back(std::move(s->out));
    ++local_.requests_done;
  } else {
    for (auto& s : r->samples) {
      if (s->sequence != 0) kv_->Release(s->sequence);
      s->sequence = 0;
    }
    ++local_.requests_failed;
  }
  ExpansionCallback done = std::move(r->done);
  PublishStats();
  done(std::move(result));
  absl::MutexLock lock(&mu_);
  --outstanding_;
}

void InferenceEngine::Fail(std::unique_ptr<Request> r, absl::Status status) {
  ExpansionCallback done = std::move(r->done);
  done(ExpansionResult{std::move(status), static_cast<int64_t>(r->prefix.size()), {}});
  absl::MutexLock lock(&mu_);
  --outstanding_;
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
