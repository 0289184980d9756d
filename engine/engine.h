// The inference engine: the Policy (search/policy.h) served by the Qwen2 model, batching the
// expansions of many concurrent search trees into one stream of model steps (ARCHITECTURE §6).
//
// One loop thread per engine (per device) runs iterations. Each iteration:
//   1. admits waiting requests in arrival order while the batch has room: the longest prefix
//      of the request cached for the current weights is looked up in the radix cache
//      (radix_cache.h) and only the rest is prefilled, in chunks under the per-step token
//      budget (max_step_tokens counts prefill and decode tokens together);
//   2. when a request's prefix is complete, its n samples start as forks of the prefix's KV
//      (shared blocks, no copy) and draw their first tokens from the same logits;
//   3. runs one decode step over every live sample (continuous batching: samples join and
//      leave at every step), samples the next tokens (each sample from its own
//      Rng(seed).Fork(j) stream), applies the stop rules;
//   4. finished samples put their tokens and KV blocks into the radix cache (so expanding
//      a child later computes only its new tokens) and get a handle; a request's callback
//      runs when its last sample finishes.
// The KV pool has a byte budget: when a step needs more blocks than are free, the engine
// evicts least-recently-used cache entries, then preempts the most recently started request
// (drops its work and restarts it later: same seeds, same samples).
//
// Weight versions: SwapWeights installs a new model as a new version. Every KV block belongs
// to the version that computed it: each version has its own radix cache and lookups never
// cross versions, so KV is never reused across versions. Requests in flight either finish on
// their old weights (kFinishInFlight) or are aborted and requeued onto the new ones
// (kAbortInFlight); an old version's model and cache are dropped once nothing uses them. A
// request preempted for KV space starts over when room frees up, on the newest weights then:
// under kFinishInFlight such a request ends on the new version (every sample says which).
//
// Threading contract: Submit, ReleaseHandle, SwapWeights, stats and WaitIdle are thread-safe
// and callable from any thread; Submit and SwapWeights never block on model work. Callbacks
// run on the engine's loop thread, one at a time; they may call Submit (the search submits
// the next expansion from a callback) but must not block. The destructor stops the loop and
// fails requests still pending with CANCELLED.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/radix_cache.h"
#include "search/policy.h"

#include "common/core/metrics.h"
#include "common/model/kv_cache.h"
#include "common/model/qwen2_model.h"
#include "common/model/token_sampling.h"

namespace deepsearch {

enum class SwapPolicy { kFinishInFlight, kAbortInFlight };

struct EngineOptions {
  int32_t max_batch = 256;         // samples decoding at once
  int64_t max_step_tokens = 2048;  // prefill + decode tokens per model step
  int64_t kv_budget_bytes = 256ll << 20;
  bool prefix_cache = true;
  SwapPolicy swap_policy = SwapPolicy::kFinishInFlight;
  std::vector<int32_t> eos_token_ids = {};
  int64_t vocab_limit = 0;                                    // 0: the model's vocab_size
  std::function<std::string(int32_t)> token_bytes = nullptr;  // for stop strings
  int64_t max_handles = 1 << 20;                              // the oldest are dropped beyond this
  MetricsRegistry* metrics = nullptr;                         // nullptr: MetricsRegistry::Default()
};

struct EngineStats {
  int64_t requests_done = 0;
  int64_t requests_failed = 0;
  int64_t samples_done = 0;
  int64_t tokens_sampled = 0;
  int64_t tokens_computed = 0;  // positions whose KV the model computed (prefill + decode)
  int64_t prefill_tokens = 0;
  int64_t decode_tokens = 0;
  int64_t prefix_lookups = 0;
  int64_t prefix_hits = 0;
  int64_t tokens_reused = 0;  // prefix positions served from the cache
  int64_t evictions = 0;
  int64_t preemptions = 0;
  int64_t steps = 0;
  int64_t kv_bytes_in_use = 0;
  int64_t kv_bytes_budget = 0;
  int64_t cache_bytes_held = 0;  // bytes of the blocks the radix caches hold
  int64_t weight_version = 0;
  int64_t live_handles = 0;
};

class InferenceEngine final : public Policy {
 public:
  // Takes the model (its config fixes the KV shapes) and starts the loop thread.
  static absl::StatusOr<std::unique_ptr<InferenceEngine>> Create(std::unique_ptr<Qwen2Model> model,
                                                                 int64_t weight_version,
                                                                 EngineOptions options);
  ~InferenceEngine() override;
  InferenceEngine(const InferenceEngine&) = delete;
  InferenceEngine& operator=(const InferenceEngine&) = delete;

  void Submit(ExpansionRequest request, ExpansionCallback done) override;
  void ReleaseHandle(int64_t handle) override;
  int64_t weight_version() const override;

  // Installs `model` as weight version `version`, which must be newer than every version
  // installed so far and have the same architecture, dtype and device. Takes effect at the
  // next iteration.
  absl::Status SwapWeights(std::unique_ptr<Qwen2Model> model, int64_t version);

  EngineStats stats() const;
  // Blocks until every submitted request has completed.
  void WaitIdle();

 private:
  struct Request;
  struct Sample;
  class CacheRefs;

  InferenceEngine(std::unique_ptr<Qwen2Model> model, int64_t weight_version, EngineOptions options);
  void Loop();
  // The loop's parts (loop thread only).
  void TakeIncoming();
  void ApplySwap();
  void RetireOldVersions();
  bool Iterate();
  absl::Status RunPrefill();
  absl::Status RunDecode();
  absl::Status StepWithRoom(int64_t version, std::vector<StepInput>& inputs, at::Tensor* logits);
  bool MakeRoom();
  void Preempt(Request* request);
  void StartSamples(Request* request, const at::Tensor& logits, int64_t row);
  void Advance(Sample* sample, const SampledToken& token);
  void FinishSample(Sample* sample);
  void FinishRequest(Request* request, absl::Status status);
  void Fail(std::unique_ptr<Request> request, absl::Status status);
  void PublishStats();

  const EngineOptions options_;
  const Qwen2Config config_;
  const ModelOptions model_options_;  // every installed model's dtype and device
  const int64_t vocab_limit_;

  // Shared with submitting threads.
  mutable absl::Mutex mu_;
  std::deque<std::unique_ptr<Request>> incoming_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, std::unique_ptr<Qwen2Model>> pending_swaps_ ABSL_GUARDED_BY(mu_);
  struct Handle {
    std::shared_ptr<const std::vector<int32_t>> tokens;
  };
  std::map<int64_t, Handle> handles_ ABSL_GUARDED_BY(mu_);
  int64_t next_handle_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t next_order_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t newest_version_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t outstanding_ ABSL_GUARDED_BY(mu_) = 0;  // submitted, callback not yet run
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  EngineStats stats_ ABSL_GUARDED_BY(mu_);

  // The loop thread's own state.
  std::map<int64_t, std::unique_ptr<Qwen2Model>> models_;
  int64_t current_version_ = 0;
  std::unique_ptr<CacheRefs> cache_refs_;
  std::unique_ptr<KvCache> kv_;
  std::map<int64_t, std::unique_ptr<RadixCache>> radix_;
  std::deque<std::unique_ptr<Request>> waiting_;  // not yet started, in arrival order
  std::vector<std::unique_ptr<Request>> active_;  // started: prefilling or sampling
  EngineStats local_;
  Counter* tokens_sampled_metric_;
  Counter* tokens_computed_metric_;
  Counter* prefix_hits_metric_;
  Counter* tokens_reused_metric_;
  Counter* evictions_metric_;
  Counter* preemptions_metric_;
  Gauge* kv_bytes_metric_;
  Gauge* cache_bytes_metric_;
  Histogram* batch_metric_;

  std::thread thread_;
};

}  // namespace deepsearch
