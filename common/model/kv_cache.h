// Key/value cache for batched decoding with the Qwen2 model: one entry per sequence, and
// sequences that fork.
//
// Layout: keys and values of all layers live in one tensor each. A sequence owns one slot and
// its KV occupies positions [0, Length) of it. Live sequences are kept in slots 0..N-1
// (releasing one moves the last sequence into the hole), so a step over every live sequence,
// in slot order, attends over a plain view of the storage: no gather, no copy per step.
// Storage grows by doubling, in slots and in length. Values are always
// [layers, slots, kv_heads, length_capacity, head_dim]; keys are either the same
// (kTokenMajor, what ATen's attention reads) or in tiles of 16 positions stored transposed,
// [layers, slots, kv_heads, length_capacity / 16, head_dim, 16] (kTiledKeys, what the CPU
// kernels read: scores for 16 keys are 16-lane multiply-adds, no horizontal sums).
//
// Fork(parent) gives a new sequence whose KV is a copy of the parent's: the children of a
// tree node share the node's prefix without recomputing it (one copy of the prefix per child,
// once, instead of one forward pass over it). The radix prefix cache of the inference engine
// builds on this.
//
// Every entry is tagged with the weight version that produced it; KvCache refuses to mix
// versions in one sequence (CHECK), and the engine never reuses KV across versions.
//
// Threading: not thread-safe; one engine thread owns a cache and the model using it.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"

#include "common/model/qwen2_config.h"
#include "common/model/torch_pch.h"

namespace deepsearch {

enum class KvLayout { kTokenMajor, kTiledKeys };

class KvCache {
 public:
  using SequenceId = int64_t;
  static constexpr int64_t kKeyTile = 16;  // positions per key tile in kTiledKeys

  // Storage for `config`'s layers and heads in `dtype` on `device`; grows on demand.
  KvCache(const Qwen2Config& config, at::ScalarType dtype, at::Device device, KvLayout layout,
          int64_t initial_slots = 8, int64_t initial_length = 128);

  // A new, empty sequence produced by weights `weight_version`.
  SequenceId Create(int64_t weight_version = 0);
  // A new sequence holding a copy of `parent`'s KV (and its length and version).
  SequenceId Fork(SequenceId parent);
  // Frees the sequence's slot; the last live sequence moves into it.
  void Release(SequenceId id);

  bool Contains(SequenceId id) const;
  int64_t Length(SequenceId id) const;
  int64_t WeightVersion(SequenceId id) const;
  int64_t SlotOf(SequenceId id) const;
  int64_t num_sequences() const { return static_cast<int64_t>(slot_owner_.size()); }
  // Bytes of KV storage allocated (capacity, not just what is used).
  int64_t BytesAllocated() const;
  // Bytes of KV that live sequences use.
  int64_t BytesUsed() const;

  // --- For the model's forward pass ----------------------------------------------------
  // Makes room for `slots` live sequences and `length` positions each.
  void Reserve(int64_t slots, int64_t length);
  KvLayout layout() const { return layout_; }
  int64_t length_capacity() const { return values_.size(3); }
  // keys()[layer]: see the layout above; values()[layer]: [slots, kv_heads, length_capacity,
  // head_dim].
  const at::Tensor& keys() const { return keys_; }
  const at::Tensor& values() const { return values_; }
  void SetLength(SequenceId id, int64_t length);

 private:
  struct Entry {
    int64_t slot = 0;
    int64_t length = 0;
    int64_t weight_version = 0;
  };
  Entry& Get(SequenceId id);
  const Entry& Get(SequenceId id) const;
  void Grow(int64_t slots, int64_t length);
  // The storage of positions [0, length) of `slot` (whole tiles for tiled keys).
  at::Tensor KeyRange(const at::Tensor& keys, int64_t slot, int64_t length) const;
  at::Tensor ValueRange(const at::Tensor& values, int64_t slot, int64_t length) const;
  void CopySlot(int64_t to, int64_t from, int64_t length);

  const int64_t layers_;
  const int64_t kv_heads_;
  const int64_t head_dim_;
  const at::ScalarType dtype_;
  const at::Device device_;
  const KvLayout layout_;
  at::Tensor keys_;
  at::Tensor values_;
  absl::flat_hash_map<SequenceId, Entry> entries_;  // live sequences
  std::vector<SequenceId> slot_owner_;              // slot 0..N-1 -> its sequence
  SequenceId next_id_ = 1;
};

}  // namespace deepsearch
