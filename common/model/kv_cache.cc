#include "common/model/kv_cache.h"

#include <algorithm>

#include "common/core/logging.h"

namespace deepsearch {

KvCache::KvCache(const Qwen2Config& config, at::ScalarType dtype, at::Device device,
                 KvLayout layout, int64_t initial_slots, int64_t initial_length)
    : layers_(config.num_hidden_layers),
      kv_heads_(config.num_key_value_heads),
      head_dim_(config.head_dim),
      dtype_(dtype),
      device_(device),
      layout_(layout) {
  // Lengths are whole tiles, so doubling keeps them whole.
  const int64_t length =
      (std::max<int64_t>(initial_length, 1) + kKeyTile - 1) / kKeyTile * kKeyTile;
  Grow(std::max<int64_t>(initial_slots, 1), length);
}

void KvCache::Grow(int64_t slots, int64_t length) {
  const auto options = at::TensorOptions().dtype(dtype_).device(device_);
  at::Tensor keys =
      layout_ == KvLayout::kTiledKeys
          ? at::zeros({layers_, slots, kv_heads_, length / kKeyTile, head_dim_, kKeyTile}, options)
          : at::zeros({layers_, slots, kv_heads_, length, head_dim_}, options);
  at::Tensor values = at::zeros({layers_, slots, kv_heads_, length, head_dim_}, options);
  if (keys_.defined()) {
    const int64_t old_slots = keys_.size(1);
    keys.narrow(1, 0, old_slots).narrow(3, 0, keys_.size(3)).copy_(keys_);
    values.narrow(1, 0, old_slots).narrow(3, 0, values_.size(3)).copy_(values_);
  }
  keys_ = std::move(keys);
  values_ = std::move(values);
}

at::Tensor KvCache::KeyRange(const at::Tensor& keys, int64_t slot, int64_t length) const {
  const int64_t span =
      layout_ == KvLayout::kTiledKeys ? (length + kKeyTile - 1) / kKeyTile : length;
  return keys.select(1, slot).narrow(2, 0, span);
}

at::Tensor KvCache::ValueRange(const at::Tensor& values, int64_t slot, int64_t length) const {
  return values.select(1, slot).narrow(2, 0, length);
}

void KvCache::CopySlot(int64_t to, int64_t from, int64_t length) {
  if (length <= 0 || to == from) return;
  KeyRange(keys_, to, length).copy_(KeyRange(keys_, from, length));
  ValueRange(values_, to, length).copy_(ValueRange(values_, from, length));
}

void KvCache::Reserve(int64_t slots, int64_t length) {
  const int64_t have_slots = keys_.size(1);
  const int64_t have_length = length_capacity();
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
  CopySlot(entry.slot, source.slot, source.length);
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
    CopySlot(gone.slot, last, entry.length);
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
  DS_CHECK(length >= 0 && length <= length_capacity())
      << "KV length " << length << " beyond capacity " << length_capacity();
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
