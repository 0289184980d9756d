// Paged key/value cache for batched decoding with the Qwen2 model: sequences that fork and
// share their prefixes, and blocks the prefix cache can hold on to.
//
// Storage is a pool of blocks of 16 positions (kBlock). A sequence is a block table plus a
// length: position p lives in block table[p / 16] at row p % 16. Blocks are reference
// counted: Fork shares every block of the parent's prefix (no copy, no recomputation), the
// prefix cache holds references of its own (Retain/ReleaseBlocks), and a block returns to the
// free list when its last reference goes. Writing into a shared block copies it first
// (copy-on-write), which only ever happens to a partially filled last block.
//
// Layout, all layers in one allocation each: values [layers, blocks, kv_heads, 16, head_dim];
// keys either the same (kTokenMajor: what ATen's attention gathers) or each block stored
// transposed, [layers, blocks, kv_heads, head_dim, 16] (kTiledKeys: what the CPU kernels
// read; scores for a block's 16 keys are 16-lane multiply-adds, no horizontal sums).
//
// With a budget (`max_blocks` > 0) the pool is reserved whole at creation and never grows:
// memory never exceeds the budget, not even transiently, and on CPU the reservation is an
// anonymous mapping whose pages are committed only when first written, so an idle budget
// costs nothing. Without one (0) the pool starts at `initial_blocks` and doubles as needed.
// When no block is free PrepareAppend fails with RESOURCE_EXHAUSTED and the caller evicts
// (the engine evicts its prefix cache).
//
// Every sequence carries the weight version that produced its KV; Fork keeps it. The engine
// never mixes versions in one sequence or reuses KV across versions.
//
// Threading: not thread-safe; one engine thread owns a cache and the model using it.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/types/span.h"

#include "common/model/qwen2_config.h"
#include "common/model/torch_pch.h"

namespace deepsearch {

enum class KvLayout { kTokenMajor, kTiledKeys };

class KvCache {
 public:
  using SequenceId = int64_t;
  using BlockId = int32_t;
  static constexpr int64_t kBlock = 16;  // positions per block (= one key tile)

  // Storage for `config`'s layers and heads in `dtype` on `device`.
  KvCache(const Qwen2Config& config, at::ScalarType dtype, at::Device device, KvLayout layout,
          int64_t initial_blocks = 64, int64_t max_blocks = 0);

  // A new, empty sequence produced by weights `weight_version`.
  SequenceId Create(int64_t weight_version = 0);
  // A new sequence sharing the first `length` positions of `parent` (all of them when -1).
  SequenceId Fork(SequenceId parent, int64_t length = -1);
  // A new sequence over blocks someone else holds (a prefix-cache hit): `blocks` cover
  // positions [0, length); each gains a reference.
  SequenceId CreateFromBlocks(absl::Span<const BlockId> blocks, int64_t length,
                              int64_t weight_version);
  // Drops the sequence and its block references.
  void Release(SequenceId id);

  bool Contains(SequenceId id) const;
  int64_t Length(SequenceId id) const;
  int64_t WeightVersion(SequenceId id) const;
  // The blocks covering positions [0, Length), followed by any PrepareAppend added.
  const std::vector<BlockId>& Blocks(SequenceId id) const;
  int64_t num_sequences() const { return static_cast<int64_t>(sequences_.size()); }

  // Block references held outside sequences (the prefix cache).
  void RetainBlocks(absl::Span<const BlockId> blocks);
  void ReleaseBlocks(absl::Span<const BlockId> blocks);
  int32_t RefCount(BlockId block) const { return ref_[static_cast<size_t>(block)]; }

  // Makes positions [Length, Length + count) writable: allocates blocks and copies a shared
  // partial last block. RESOURCE_EXHAUSTED (and nothing changed) when the pool is at
  // max_blocks and has too few free blocks.
  absl::Status PrepareAppend(SequenceId id, int64_t count);
  // The blocks PrepareAppend(id, count) would take from the pool.
  int64_t BlocksNeeded(SequenceId id, int64_t count) const;
  // Sets the length after the model wrote the new positions (within prepared blocks).
  void SetLength(SequenceId id, int64_t length);

  // Pool accounting.
  int64_t total_blocks() const { return keys_.size(1); }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t max_blocks() const { return max_blocks_; }
  int64_t BytesPerBlock() const;
  int64_t BytesAllocated() const { return total_blocks() * BytesPerBlock(); }
  int64_t BytesInUse() const { return (total_blocks() - free_blocks()) * BytesPerBlock(); }
  // Free blocks plus what the pool may still grow by.
  int64_t AvailableBlocks() const;

  KvLayout layout() const { return layout_; }
  const at::Tensor& keys() const { return keys_; }
  const at::Tensor& values() const { return values_; }

 private:
  struct Sequence {
    std::vector<BlockId> blocks;
    int64_t length = 0;
    int64_t weight_version = 0;
  };
  Sequence& Get(SequenceId id);
  const Sequence& Get(SequenceId id) const;
  bool SharedPartialLast(const Sequence& s, int64_t count) const;
  // A free block (growing an unbounded pool), or -1.
  BlockId Allocate();
  void Unref(BlockId block);
  bool Grow();
  void CopyBlock(BlockId to, BlockId from);

  const int64_t layers_;
  const int64_t kv_heads_;
  const int64_t head_dim_;
  const at::ScalarType dtype_;
  const at::Device device_;
  const KvLayout layout_;
  const int64_t max_blocks_;
  at::Tensor keys_;
  at::Tensor values_;
  std::vector<int32_t> ref_;   // per block: sequences and outside holders referencing it
  std::vector<BlockId> free_;  // blocks with no reference
  absl::flat_hash_map<SequenceId, Sequence> sequences_;
  SequenceId next_id_ = 1;
};

}  // namespace deepsearch
