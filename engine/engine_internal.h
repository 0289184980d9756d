// The engine's private types, shared by engine.cc and engine_step.cc. Not a public header:
// only the engine's own sources include it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "engine/engine.h"

namespace deepsearch {

inline int64_t BlocksFor(int64_t length) {
  return (length + KvCache::kBlock - 1) / KvCache::kBlock;
}

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

}  // namespace deepsearch
