#include "coordinator/prefix_cache.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace phx {
namespace {

std::vector<int32_t> iota(int32_t from, int32_t count) {
  std::vector<int32_t> v;
  for (int32_t i = 0; i < count; ++i) v.push_back(from + i);
  return v;
}

// Registers a sequence's full blocks as the scheduler does.
void insertAll(PrefixCache& cache, const std::vector<int32_t>& tokens, const BlockTable& table, int64_t blockSize) {
  uint64_t previous = 0;
  for (size_t b = 0; (b + 1) * size_t(blockSize) <= tokens.size(); ++b) {
    previous = cache.insert(previous, std::span(tokens).subspan(b * size_t(blockSize), size_t(blockSize)), table[b]);
  }
}

TEST(BlockAllocatorRefCountTest, SharedBlocksReturnToThePoolWithTheirLastHolder) {
  BlockAllocator allocator(4, 4);
  BlockTable a;
  ASSERT_TRUE(allocator.grow(a, 8));
  allocator.retain(a[0]);
  EXPECT_EQ(allocator.refCount(a[0]), 2);
  const int32_t shared = a[0];
  allocator.release(a);
  EXPECT_EQ(allocator.freeBlocks(), 3);  // the shared block still has a holder
  allocator.release(shared);
  EXPECT_EQ(allocator.freeBlocks(), 4);
  EXPECT_THROW(allocator.release(shared), Error);  // now free: a double release
  EXPECT_THROW(allocator.retain(shared), Error);
  EXPECT_EQ(allocator.freeBlocks(), 4);
}

TEST(PrefixCacheTest, ReusesMatchingFullBlocksOnly) {
  BlockAllocator allocator(16, 4);
  PrefixCache cache(allocator);
  const auto prompt = iota(100, 10);  // two full blocks and a partial one
  BlockTable first;
  ASSERT_TRUE(allocator.grow(first, 10));
  insertAll(cache, prompt, first, 4);
  EXPECT_EQ(cache.cachedBlocks(), 2);

  BlockTable hit = cache.acquire(prompt, 8);
  ASSERT_EQ(hit.size(), 2u);
  EXPECT_EQ(hit[0], first[0]);
  EXPECT_EQ(hit[1], first[1]);
  EXPECT_EQ(allocator.refCount(first[0]), 3);  // first sequence, the cache, the new one
  allocator.release(hit);

  // A different second block: only the first matches. A different first block: nothing, even when the second
  // block's own tokens match (its keys and values depend on everything before it).
  auto other = prompt;
  other[5] = 7;
  BlockTable partial = cache.acquire(other, 8);
  EXPECT_EQ(partial.size(), 1u);
  allocator.release(partial);
  other = prompt;
  other[0] = 7;
  EXPECT_TRUE(cache.acquire(other, 8).empty());
  EXPECT_EQ(cache.acquire(prompt, 1).size(), 1u);  // maxBlocks caps the match
  allocator.release(first);
}

TEST(PrefixCacheTest, EvictsUnreferencedBlocksLeastRecentlyUsedFirst) {
  BlockAllocator allocator(4, 2);
  PrefixCache cache(allocator);
  const auto a = iota(1, 2), b = iota(50, 2);
  BlockTable ta, tb;
  ASSERT_TRUE(allocator.grow(ta, 2));
  ASSERT_TRUE(allocator.grow(tb, 2));
  insertAll(cache, a, ta, 2);
  insertAll(cache, b, tb, 2);
  allocator.release(ta);
  allocator.release(tb);
  EXPECT_EQ(allocator.freeBlocks(), 2);  // both kept by the cache
  EXPECT_EQ(cache.evictableBlocks(), 2);
  BlockTable touch = cache.acquire(a, 1);  // a: the most recently used
  allocator.release(touch);
  EXPECT_TRUE(cache.evictUntilFree(3));  // one block to free: b, the least recently used, goes
  EXPECT_TRUE(cache.acquire(b, 1).empty());
  BlockTable held = cache.acquire(a, 1);
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(cache.evictableBlocks(), 0);
  EXPECT_FALSE(cache.evictUntilFree(4));  // a is held by a sequence: it stays
  EXPECT_EQ(allocator.freeBlocks(), 3);
  allocator.release(held);
  EXPECT_TRUE(cache.evictUntilFree(4));
  EXPECT_EQ(cache.cachedBlocks(), 0);
  EXPECT_EQ(allocator.freeBlocks(), 4);
}

TEST(PrefixCacheTest, ClearingGivesBlocksBackButLeavesHoldersTheirs) {
  BlockAllocator allocator(4, 2);
  BlockTable table;
  {
    PrefixCache cache(allocator);
    ASSERT_TRUE(allocator.grow(table, 4));
    insertAll(cache, iota(3, 4), table, 2);
    EXPECT_EQ(allocator.refCount(table[0]), 2);
  }
  EXPECT_EQ(allocator.refCount(table[0]), 1);
  allocator.release(table);
  EXPECT_EQ(allocator.freeBlocks(), 4);
}

}  // namespace
}  // namespace phx
