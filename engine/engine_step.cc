// One iteration of the engine's loop (engine.h, steps 1 to 4 and the KV budget): admission under
// the batch and token budgets, chunked prefill, one decode step, room made in the KV pool by
// evicting the radix caches and then by preempting the most recent request, and the finish of
// samples and requests.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/engine.h"
#include "engine/engine_internal.h"

#include "common/core/logging.h"
#include "common/core/status.h"

namespace deepsearch {

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

}  // namespace deepsearch
