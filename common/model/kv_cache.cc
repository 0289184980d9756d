#include "common/model/kv_cache.h"

#include <algorithm>

#include "common/core/logging.h"

namespace deepsearch {

KvCache::KvCache(const Qwen2Config& config, at::ScalarType dtype, at::Device device,
                 int64_t initial_slots, int64_t initial_length)
    : layers_(config.num_hidden_layers),
      kv_heads_(config.num_key_value_heads),
      head_dim_(config.head_dim),
      dtype_(dtype),
      device_(device) {
  Grow(std::max<int64_t>(initial_slots, 1), std::max<int64_t>(initial_length, 1));
}

void KvCache::Grow(int64_t slots, int64_t length) {
  const auto options = at::TensorOptions().dtype(dtype_).device(device_);
  at::Tensor keys = at::zeros({layers_, slots, kv_heads_, length, head_dim_}, options);
  at::Tensor values = at::zeros({layers_, slots, kv_heads_, length, head_dim_}, options);
  if (keys_.defined()) {
    const int64_t old_slots = keys_.size(1);
    const int64_t old_length = keys_.size(3);
    keys.narrow(1, 0, old_slots).narrow(3, 0, old_length).copy_(keys_);
    values.narrow(1, 0, old_slots).narrow(3, 0, old_length).copy_(values_);
  }
  keys_ = std::move(keys);
  values_ = std::move(values);
}

void KvCache::Reserve(int64_t slots, int64_t length) {
  const int64_t have_slots = keys_.size(1);
  const int64_t have_length = keys_.size(3);
  if (slots <= have_slots && length <= have_length) return;
  int64_t new_slots = have_slots, new_length = have_length;
  while (new_slots < slots) new_slots *= 2;
  while (new_length < length) new_length *= 2;
  Grow(new_slots, new_length);
}

KvCache::Entry& KvCache::Get(SequenceId id) {
  auto it = entries_.find(id);
  DS_CHECK(it != entries_.end()) << "unknown KV sequence " << id;
  return it->second;
}

const KvCache::Entry& KvCache::Get(SequenceId id) const {
  auto it = entries_.find(id);
  DS_CHECK(it != entries_.end()) << "unknown KV sequence " << id;
  return it->second;
}

KvCache::SequenceId KvCache::Create(int64_t weight_version) {
  const int64_t slot = num_sequences();
  Reserve(slot + 1, 1);
  const SequenceId id = next_id_++;
  entries_[id] = Entry{slot, 0, weight_version};
  slot_owner_.push_back(id);
  return id;
}

KvCache::SequenceId KvCache::Fork(SequenceId parent) {
  const Entry source = Get(parent);
  const SequenceId child = Create(source.weight_version);
  Entry& entry = Get(child);
  if (source.length > 0) {
    keys_.select(1, entry.slot)
        .narrow(2, 0, source.length)
        .copy_(keys_.select(1, source.slot).narrow(2, 0, source.length));
    values_.select(1, entry.slot)
        .narrow(2, 0, source.length)
        .copy_(values_.select(1, source.slot).narrow(2, 0, source.length));
  }
  entry.length = source.length;
  return child;
}

void KvCache::Release(SequenceId id) {
  const Entry gone = Get(id);
  entries_.erase(id);
  const int64_t last = num_sequences() - 1;
  const SequenceId moved = slot_owner_[static_cast<size_t>(last)];
  if (gone.slot != last) {
    // Keep live sequences in slots 0..N-1: move the last one into the hole.
    Entry& entry = Get(moved);
    if (entry.length > 0) {
      keys_.select(1, gone.slot)
          .narrow(2, 0, entry.length)
          .copy_(keys_.select(1, last).narrow(2, 0, entry.length));
      values_.select(1, gone.slot)
          .narrow(2, 0, entry.length)
          .copy_(values_.select(1, last).narrow(2, 0, entry.length));
    }
    entry.slot = gone.slot;
    slot_owner_[static_cast<size_t>(gone.slot)] = moved;
  }
  slot_owner_.pop_back();
}

bool KvCache::Contains(SequenceId id) const { return entries_.contains(id); }
int64_t KvCache::Length(SequenceId id) const { return Get(id).length; }
int64_t KvCache::WeightVersion(SequenceId id) const { return Get(id).weight_version; }
int64_t KvCache::SlotOf(SequenceId id) const { return Get(id).slot; }

void KvCache::SetLength(SequenceId id, int64_t length) {
  DS_CHECK(length >= 0 && length <= keys_.size(3))
      << "KV length " << length << " beyond capacity " << keys_.size(3);
  Get(id).length = length;
}

int64_t KvCache::BytesAllocated() const {
  return 2 * keys_.numel() * static_cast<int64_t>(c10::elementSize(dtype_));
}

int64_t KvCache::BytesUsed() const {
  int64_t tokens = 0;
  for (const auto& [id, entry] : entries_) tokens += entry.length;
  return 2 * tokens * layers_ * kv_heads_ * head_dim_ *
         static_cast<int64_t>(c10::elementSize(dtype_));
}

}  // namespace deepsearch
