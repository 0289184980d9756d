// The radix prefix cache against a fake block pool that counts references.
#include "engine/radix_cache.h"

#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace deepsearch {
namespace {

using ::testing::ElementsAre;

class CountingRefs : public BlockRefs {
 public:
  void Retain(absl::Span<const int32_t> blocks) override {
    for (int32_t b : blocks) ++refs[b];
  }
  void Release(absl::Span<const int32_t> blocks) override {
    for (int32_t b : blocks) {
      ASSERT_GT(refs[b], 0) << "block " << b << " released more often than retained";
      if (--refs[b] == 0) refs.erase(b);
    }
  }
  std::map<int32_t, int> refs;
};

std::vector<int32_t> Tokens(int from, int count) {
  std::vector<int32_t> t;
  for (int i = 0; i < count; ++i) t.push_back(from + i);
  return t;
}

TEST(RadixCacheTest, MatchesTheLongestCachedPrefixWithItsBlocks) {
  CountingRefs refs;
  RadixCache cache(&refs, /*block_size=*/4);
  // A sequence of 10 tokens in blocks 7, 8, 9 (the last one half full).
  cache.Insert(Tokens(100, 10), std::vector<int32_t>{7, 8, 9});
  RadixCache::Match m = cache.Lookup(Tokens(100, 10), 100);
  EXPECT_EQ(m.length, 10);
  EXPECT_THAT(m.blocks, ElementsAre(7, 8, 9));
  m = cache.Lookup(Tokens(100, 6), 100);  // a prefix: ends inside the edge
  EXPECT_EQ(m.length, 6);
  EXPECT_THAT(m.blocks, ElementsAre(7, 8));
  m = cache.Lookup(Tokens(100, 10), 9);  // capped by max_length
  EXPECT_EQ(m.length, 9);
  std::vector<int32_t> other = Tokens(100, 5);
  other.push_back(999);
  m = cache.Lookup(other, 100);  // diverges after 5
  EXPECT_EQ(m.length, 5);
  EXPECT_THAT(m.blocks, ElementsAre(7, 8));
  EXPECT_EQ(cache.Lookup(Tokens(5, 3), 100).length, 0);
  EXPECT_EQ(cache.stats().lookups, 5);
  EXPECT_EQ(cache.stats().hits, 4);
  EXPECT_EQ(cache.stats().tokens_matched, 10 + 6 + 9 + 5);
}

TEST(RadixCacheTest, SplitsEdgesWhereSequencesDivergeAndHoldsEachBlockWhileNeeded) {
  CountingRefs refs;
  RadixCache cache(&refs, 4);
  cache.Insert(Tokens(0, 10), std::vector<int32_t>{1, 2, 3});
  // Shares the first 6 tokens (blocks 1 and the copy-on-write 20 of block 2), then diverges.
  std::vector<int32_t> b = Tokens(0, 6);
  for (int i = 0; i < 6; ++i) b.push_back(50 + i);
  cache.Insert(b, std::vector<int32_t>{1, 20, 21});
  EXPECT_EQ(cache.stats().nodes, 3);  // the split node and two leaves
  RadixCache::Match m = cache.Lookup(b, 100);
  EXPECT_EQ(m.length, 12);
  EXPECT_THAT(m.blocks, ElementsAre(1, 20, 21));
  m = cache.Lookup(Tokens(0, 10), 100);
  EXPECT_THAT(m.blocks, ElementsAre(1, 2, 3));
  // The split node holds the blocks of [0, 6) from the first sequence: 1 and 2.
  EXPECT_EQ(refs.refs[1], 3);
  EXPECT_EQ(refs.refs[2], 2);
  EXPECT_EQ(refs.refs[20], 1);
  EXPECT_EQ(cache.stats().blocks_held, 5);
  // Inserting a prefix of a cached sequence adds nothing.
  cache.Insert(Tokens(0, 3), std::vector<int32_t>{1});
  EXPECT_EQ(cache.stats().nodes, 3);
  cache.Clear();
  EXPECT_TRUE(refs.refs.empty());
  EXPECT_EQ(cache.stats().nodes, 0);
}

TEST(RadixCacheTest, EvictsLeastRecentlyUsedLeavesFirst) {
  CountingRefs refs;
  RadixCache cache(&refs, 4);
  cache.Insert(Tokens(0, 4), std::vector<int32_t>{1});
  cache.Insert(Tokens(100, 4), std::vector<int32_t>{2});
  cache.Insert(Tokens(200, 4), std::vector<int32_t>{3});
  cache.Lookup(Tokens(0, 4), 100);  // now the most recent
  ASSERT_TRUE(cache.EvictLeastRecentlyUsed());
  EXPECT_EQ(cache.Lookup(Tokens(100, 4), 100).length, 0);  // evicted
  EXPECT_EQ(refs.refs.count(2), 0u);
  ASSERT_TRUE(cache.EvictLeastRecentlyUsed());
  EXPECT_EQ(cache.Lookup(Tokens(200, 4), 100).length, 0);
  EXPECT_EQ(cache.Lookup(Tokens(0, 4), 100).length, 4);
  ASSERT_TRUE(cache.EvictLeastRecentlyUsed());
  EXPECT_FALSE(cache.EvictLeastRecentlyUsed());
  EXPECT_TRUE(refs.refs.empty());
  EXPECT_EQ(cache.stats().evictions, 3);
}

TEST(RadixCacheTest, AnInnerNodeBecomesALeafWhenItsChildrenGo) {
  CountingRefs refs;
  RadixCache cache(&refs, 4);
  std::vector<int32_t> a = Tokens(0, 8), b = Tokens(0, 4);
  b.push_back(77);
  cache.Insert(a, std::vector<int32_t>{1, 2});
  cache.Insert(b, std::vector<int32_t>{1, 3});  // splits at 4: inner node [0, 4)
  while (cache.EvictLeastRecentlyUsed()) {
  }
  EXPECT_EQ(cache.stats().nodes, 0);
  EXPECT_TRUE(refs.refs.empty());
}

TEST(RadixCacheTest, DestructionReleasesEverything) {
  CountingRefs refs;
  {
    RadixCache cache(&refs, 16);
    cache.Insert(Tokens(0, 40), std::vector<int32_t>{4, 5, 6});
    cache.Insert(Tokens(0, 20), std::vector<int32_t>{4, 5});
  }
  EXPECT_TRUE(refs.refs.empty());
}

}  // namespace
}  // namespace deepsearch
