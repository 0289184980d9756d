#include "common/model/kv_cache.h"

#include <algorithm>
#include <limits>

#include <sys/mman.h>

#include "absl/strings/str_cat.h"

#include "common/core/logging.h"

namespace deepsearch {
namespace {

int64_t BlocksFor(int64_t length) { return (length + KvCache::kBlock - 1) / KvCache::kBlock; }

// A zero-filled tensor. On CPU its memory is an anonymous mapping: page-aligned, zero, and
// committed by the kernel page by page on first write, so a pool reserved whole at its budget
// costs memory only as blocks are used. Elsewhere (CUDA) it is allocated up front.
at::Tensor ReservedZeros(at::IntArrayRef shape, const at::TensorOptions& options) {
  if (!options.device().is_cpu()) return at::zeros(shape, options);
  int64_t numel = 1;
  for (const int64_t d : shape) numel *= d;
  const size_t bytes = std::max<size_t>(
      1, static_cast<size_t>(numel) * c10::elementSize(options.dtype().toScalarType()));
  void* data = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED) return at::zeros(shape, options);
  return at::from_blob(
      data, shape, [bytes](void* p) { ::munmap(p, bytes); }, options);
}

}  // namespace

KvCache::KvCache(const Qwen2Config& config, at::ScalarType dtype, at::Device device,
                 KvLayout layout, int64_t initial_blocks, int64_t max_blocks)
    : layers_(config.num_hidden_layers),
      kv_heads_(config.num_key_value_heads),
      head_dim_(config.head_dim),
      dtype_(dtype),
      device_(device),
      layout_(layout),
      max_blocks_(max_blocks) {
  // A bounded pool is reserved whole: it never grows, so it never holds an old and a new copy
  // at once (growth by doubling peaks at 1.5x the final size), and on CPU the reservation
  // costs nothing until blocks are written (ReservedZeros). An unbounded one starts at
  // initial_blocks and doubles.
  const int64_t blocks = max_blocks_ > 0 ? max_blocks_ : std::max<int64_t>(initial_blocks, 1);
  const auto options = at::TensorOptions().dtype(dtype_).device(device_);
  keys_ = layout_ == KvLayout::kTiledKeys
              ? ReservedZeros({layers_, blocks, kv_heads_, head_dim_, kBlock}, options)
              : ReservedZeros({layers_, blocks, kv_heads_, kBlock, head_dim_}, options);
  values_ = ReservedZeros({layers_, blocks, kv_heads_, kBlock, head_dim_}, options);
  ref_.assign(static_cast<size_t>(blocks), 0);
  for (int64_t b = blocks - 1; b >= 0; --b) free_.push_back(static_cast<BlockId>(b));
}

int64_t KvCache::BytesPerBlock() const {
  return 2 * layers_ * kv_heads_ * kBlock * head_dim_ *
         static_cast<int64_t>(c10::elementSize(dtype_));
}

int64_t KvCache::AvailableBlocks() const {
  if (max_blocks_ <= 0) return std::numeric_limits<int64_t>::max();
  return free_blocks() + (max_blocks_ - total_blocks());
}

bool KvCache::Grow() {
  const int64_t have = total_blocks();
  int64_t want = have * 2;
  if (max_blocks_ > 0) want = std::min(want, max_blocks_);
  if (want <= have) return false;
  std::vector<int64_t> key_shape = keys_.sizes().vec(), value_shape = values_.sizes().vec();
  key_shape[1] = want;
  value_shape[1] = want;
  at::Tensor keys = at::zeros(key_shape, keys_.options());
  at::Tensor values = at::zeros(value_shape, values_.options());
  keys.narrow(1, 0, have).copy_(keys_);
  values.narrow(1, 0, have).copy_(values_);
  keys_ = std::move(keys);
  values_ = std::move(values);
  ref_.resize(static_cast<size_t>(want), 0);
  for (int64_t b = want - 1; b >= have; --b) free_.push_back(static_cast<BlockId>(b));
  return true;
}

KvCache::BlockId KvCache::Allocate() {
  if (free_.empty() && !Grow()) return -1;
  const BlockId block = free_.back();
  free_.pop_back();
  ref_[static_cast<size_t>(block)] = 1;
  return block;
}

void KvCache::Unref(BlockId block) {
  int32_t& r = ref_[static_cast<size_t>(block)];
  DS_CHECK(r > 0) << "KV block " << block << " released more often than referenced";
  if (--r == 0) free_.push_back(block);
}

void KvCache::CopyBlock(BlockId to, BlockId from) {
  keys_.select(1, to).copy_(keys_.select(1, from));
  values_.select(1, to).copy_(values_.select(1, from));
}

KvCache::Sequence& KvCache::Get(SequenceId id) {
  auto it = sequences_.find(id);
  DS_CHECK(it != sequences_.end()) << "unknown KV sequence " << id;
  return it->second;
}

const KvCache::Sequence& KvCache::Get(SequenceId id) const {
  auto it = sequences_.find(id);
  DS_CHECK(it != sequences_.end()) << "unknown KV sequence " << id;
  return it->second;
}

KvCache::SequenceId KvCache::Create(int64_t weight_version) {
  const SequenceId id = next_id_++;
  sequences_[id] = Sequence{{}, 0, weight_version};
  return id;
}

KvCache::SequenceId KvCache::Fork(SequenceId parent, int64_t length) {
  const Sequence& source = Get(parent);
  if (length < 0) length = source.length;
  DS_CHECK(length <= source.length)
      << "Fork of " << length << " positions from a sequence of " << source.length;
  const std::vector<BlockId> blocks(source.blocks.begin(),
                                    source.blocks.begin() + BlocksFor(length));
  return CreateFromBlocks(blocks, length, source.weight_version);
}

KvCache::SequenceId KvCache::CreateFromBlocks(absl::Span<const BlockId> blocks, int64_t length,
                                              int64_t weight_version) {
  DS_CHECK(static_cast<int64_t>(blocks.size()) == BlocksFor(length))
      << blocks.size() << " blocks for " << length << " positions";
  RetainBlocks(blocks);
  const SequenceId id = next_id_++;
  sequences_[id] =
      Sequence{std::vector<BlockId>(blocks.begin(), blocks.end()), length, weight_version};
  return id;
}

void KvCache::Release(SequenceId id) {
  Sequence& s = Get(id);
  for (BlockId b : s.blocks) Unref(b);
  sequences_.erase(id);
}

void KvCache::RetainBlocks(absl::Span<const BlockId> blocks) {
  for (BlockId b : blocks) {
    DS_CHECK(b >= 0 && b < total_blocks() && ref_[static_cast<size_t>(b)] > 0)
        << "retaining a free KV block " << b;
    ++ref_[static_cast<size_t>(b)];
  }
}

void KvCache::ReleaseBlocks(absl::Span<const BlockId> blocks) {
  for (BlockId b : blocks) Unref(b);
}

int64_t KvCache::BlocksNeeded(SequenceId id, int64_t count) const {
  const Sequence& s = Get(id);
  const int64_t grow =
      std::max<int64_t>(BlocksFor(s.length + count) - static_cast<int64_t>(s.blocks.size()), 0);
  return grow + (SharedPartialLast(s, count) ? 1 : 0);
}

// Whether appending `count` positions writes into a partially filled last block that others
// share (which must then be copied first).
bool KvCache::SharedPartialLast(const Sequence& s, int64_t count) const {
  return count > 0 && s.length % kBlock != 0 && ref_[static_cast<size_t>(s.blocks.back())] > 1;
}

absl::Status KvCache::PrepareAppend(SequenceId id, int64_t count) {
  const int64_t needed = BlocksNeeded(id, count);
  if (needed > AvailableBlocks()) {
    return absl::ResourceExhaustedError(absl::StrCat("KV cache full: ", needed,
                                                     " block(s) needed, ", AvailableBlocks(),
                                                     " available of ", max_blocks_));
  }
  Sequence& s = Get(id);
  if (SharedPartialLast(s, count)) {
    const BlockId copy = Allocate();
    CopyBlock(copy, s.blocks.back());
    Unref(s.blocks.back());
    s.blocks.back() = copy;
  }
  while (static_cast<int64_t>(s.blocks.size()) < BlocksFor(s.length + count))
    s.blocks.push_back(Allocate());
  return absl::OkStatus();
}

void KvCache::SetLength(SequenceId id, int64_t length) {
  Sequence& s = Get(id);
  DS_CHECK(length >= 0 && BlocksFor(length) <= static_cast<int64_t>(s.blocks.size()))
      << "KV length " << length << " beyond the sequence's " << s.blocks.size() << " blocks";
  s.length = length;
}

bool KvCache::Contains(SequenceId id) const { return sequences_.contains(id); }
int64_t KvCache::Length(SequenceId id) const { return Get(id).length; }
int64_t KvCache::WeightVersion(SequenceId id) const { return Get(id).weight_version; }
const std::vector<KvCache::BlockId>& KvCache::Blocks(SequenceId id) const { return Get(id).blocks; }

}  // namespace deepsearch
