// The paged KV cache's bookkeeping: shared blocks, copy-on-write of a shared partial block,
// reference counts, outside references, the block budget.
#include "common/model/kv_cache.h"

#include <unistd.h>

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace deepsearch {
namespace {

Qwen2Config Config() {
  Qwen2Config c;
  c.vocab_size = 16;
  c.hidden_size = 16;
  c.intermediate_size = 16;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.head_dim = 8;
  return c;
}

KvCache Make(int64_t initial, int64_t max) {
  return KvCache(Config(), at::kFloat, at::kCPU, KvLayout::kTiledKeys, initial, max);
}

TEST(KvCacheTest, ForksShareBlocksAndCopyOnlyASharedPartialBlockOnWrite) {
  KvCache cache = Make(8, 0);
  const KvCache::SequenceId parent = cache.Create(7);
  ASSERT_TRUE(cache.PrepareAppend(parent, 20).ok());  // 20 positions: one full block, one partial
  cache.SetLength(parent, 20);
  ASSERT_EQ(cache.Blocks(parent).size(), 2u);
  EXPECT_EQ(cache.free_blocks(), 6);
  const KvCache::SequenceId child = cache.Fork(parent);
  EXPECT_EQ(cache.Blocks(child), cache.Blocks(parent));
  EXPECT_EQ(cache.free_blocks(), 6);  // nothing copied
  EXPECT_EQ(cache.RefCount(cache.Blocks(parent)[1]), 2);
  EXPECT_EQ(cache.WeightVersion(child), 7);
  // Writing into the shared partial block copies it: the child gets its own, the full block
  // stays shared.
  const KvCache::BlockId shared_partial = cache.Blocks(parent)[1];
  ASSERT_TRUE(cache.PrepareAppend(child, 1).ok());
  EXPECT_EQ(cache.Blocks(child)[0], cache.Blocks(parent)[0]);
  EXPECT_NE(cache.Blocks(child)[1], shared_partial);
  EXPECT_EQ(cache.RefCount(shared_partial), 1);
  EXPECT_EQ(cache.free_blocks(), 5);
  // The copy holds the parent's rows.
  const auto k = cache.keys().select(1, cache.Blocks(child)[1]);
  EXPECT_TRUE(k.equal(cache.keys().select(1, shared_partial)));
  // Appending past the block boundary allocates without copying.
  cache.SetLength(child, 21);
  ASSERT_TRUE(cache.PrepareAppend(child, 12).ok());
  EXPECT_EQ(cache.Blocks(child).size(), 3u);
  // A fork of a prefix shares only the blocks that prefix covers.
  const KvCache::SequenceId head = cache.Fork(parent, 16);
  EXPECT_EQ(cache.Blocks(head).size(), 1u);
  EXPECT_EQ(cache.Length(head), 16);
  // Releasing everything returns every block.
  cache.Release(parent);
  cache.Release(child);
  cache.Release(head);
  EXPECT_EQ(cache.free_blocks(), cache.total_blocks());
}

TEST(KvCacheTest, OutsideReferencesKeepBlocksAlive) {
  KvCache cache = Make(4, 0);
  const KvCache::SequenceId seq = cache.Create();
  ASSERT_TRUE(cache.PrepareAppend(seq, 32).ok());
  cache.SetLength(seq, 32);
  const std::vector<KvCache::BlockId> blocks = cache.Blocks(seq);
  cache.RetainBlocks(blocks);  // the prefix cache keeps them
  cache.Release(seq);
  EXPECT_EQ(cache.free_blocks(), 2);
  const KvCache::SequenceId hit = cache.CreateFromBlocks(blocks, 32, 0);
  EXPECT_EQ(cache.Length(hit), 32);
  cache.ReleaseBlocks(blocks);
  EXPECT_EQ(cache.free_blocks(), 2);  // the new sequence still holds them
  cache.Release(hit);
  EXPECT_EQ(cache.free_blocks(), 4);
}

TEST(KvCacheTest, TheBudgetHoldsAndAFailedPrepareChangesNothing) {
  KvCache cache = Make(2, 4);
  EXPECT_EQ(cache.BytesPerBlock(), 2 * 2 * 1 * 16 * 8 * 4);
  const KvCache::SequenceId a = cache.Create();
  EXPECT_EQ(cache.total_blocks(), 4);            // a bounded pool is reserved whole
  ASSERT_TRUE(cache.PrepareAppend(a, 48).ok());  // 3 blocks
  cache.SetLength(a, 48);
  EXPECT_EQ(cache.total_blocks(), 4);
  const KvCache::SequenceId b = cache.Create();
  const absl::Status full = cache.PrepareAppend(b, 17);  // needs 2, 1 left
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(full.message()),
              ::testing::HasSubstr("2 block(s) needed, 1 available of 4"));
  EXPECT_TRUE(cache.Blocks(b).empty());
  EXPECT_EQ(cache.free_blocks(), 1);
  EXPECT_EQ(cache.total_blocks(), 4);  // never beyond max_blocks
  EXPECT_LE(cache.BytesAllocated(), 4 * cache.BytesPerBlock());
}

// Resident memory of this process, from /proc/self/statm.
int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

TEST(KvCacheTest, AReservedBudgetCostsMemoryOnlyAsItIsWritten) {
  constexpr int64_t kBudget = int64_t{512} << 20;
  const int64_t before = ResidentBytes();
  KvCache cache = Make(4, kBudget / Make(1, 1).BytesPerBlock());
  EXPECT_EQ(cache.BytesAllocated(), kBudget);
  EXPECT_LT(ResidentBytes() - before, int64_t{32} << 20);  // reserved, not committed
  // Blocks read as zeros, and writing one commits about its pages only.
  const KvCache::SequenceId seq = cache.Create();
  ASSERT_TRUE(cache.PrepareAppend(seq, 16).ok());
  const int64_t block = cache.Blocks(seq)[0];
  EXPECT_EQ(cache.values().select(1, block).abs().sum().item<float>(), 0.0f);
  cache.values().select(1, block).fill_(1.0f);
  EXPECT_EQ(cache.values().select(1, block).sum().item<float>(),
            static_cast<float>(cache.values().select(1, block).numel()));
  EXPECT_LT(ResidentBytes() - before, int64_t{32} << 20);
}

TEST(KvCacheDeathTest, MisuseCrashes) {
  KvCache cache = Make(2, 0);
  EXPECT_DEATH(cache.Length(42), "unknown KV sequence 42");
  const KvCache::SequenceId s = cache.Create();
  EXPECT_DEATH(cache.SetLength(s, 5), "beyond the sequence's 0 blocks");
  EXPECT_DEATH(cache.RetainBlocks(std::vector<KvCache::BlockId>{1}), "retaining a free KV block 1");
}

}  // namespace
}  // namespace deepsearch

#include "common/model/cpu_kernels.h"

namespace deepsearch {
namespace {

TEST(CpuKernelsTest, ExpIsAccurate) {
  double worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.001953125f) {
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(cpu_kernels::Exp(x) - want) / want);
  }
  EXPECT_LT(worst, 3e-7);
  EXPECT_EQ(cpu_kernels::Exp(0.0f), 1.0f);
  EXPECT_EQ(cpu_kernels::Exp(-100.0f), 0.0f);
  EXPECT_EQ(cpu_kernels::Exp(-std::numeric_limits<float>::infinity()), 0.0f);
}

}  // namespace
}  // namespace deepsearch
