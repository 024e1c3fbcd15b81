#include "coordinator/block_allocator.h"

#include <algorithm>
#include <set>

#include <gtest/gtest.h>

#include "common/error.h"

namespace phx {
namespace {

TEST(BlockAllocatorTest, GrowsToCoverContextAndHandsOutDistinctBlocks) {
  BlockAllocator allocator(10, 16);
  BlockTable a, b;
  ASSERT_TRUE(allocator.grow(a, 1));
  EXPECT_EQ(a.size(), 1u);
  ASSERT_TRUE(allocator.grow(a, 16));
  EXPECT_EQ(a.size(), 1u);  // 16 tokens still fit one block
  ASSERT_TRUE(allocator.grow(a, 17));
  EXPECT_EQ(a.size(), 2u);
  ASSERT_TRUE(allocator.grow(b, 100));
  EXPECT_EQ(b.size(), 7u);  // ceil(100 / 16)
  std::set<int32_t> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  EXPECT_EQ(all.size(), 9u);
  for (int32_t block : all) EXPECT_TRUE(block >= 0 && block < 10);
  EXPECT_EQ(allocator.freeBlocks(), 1);
}

TEST(BlockAllocatorTest, RefusesWhenFullAndLeavesTableUnchanged) {
  BlockAllocator allocator(4, 8);
  BlockTable a, b;
  ASSERT_TRUE(allocator.grow(a, 24));
  EXPECT_TRUE(allocator.canHold(b, 8));
  EXPECT_FALSE(allocator.canHold(b, 9));
  EXPECT_FALSE(allocator.grow(b, 9));
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(allocator.freeBlocks(), 1);
  allocator.release(a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(allocator.freeBlocks(), 4);
  EXPECT_TRUE(allocator.grow(b, 32));
  EXPECT_EQ(allocator.freeBlocks(), 0);
}

TEST(BlockAllocatorTest, ReleasedBlocksAreReused) {
  BlockAllocator allocator(3, 4);
  BlockTable a, b;
  ASSERT_TRUE(allocator.grow(a, 12));
  const BlockTable held = a;
  allocator.release(a);
  ASSERT_TRUE(allocator.grow(b, 12));
  EXPECT_TRUE(std::is_permutation(b.begin(), b.end(), held.begin()));
}

TEST(BlockAllocatorTest, DoubleFreeAndForeignBlocksAreRefusedWithoutChangingThePool) {
  BlockAllocator allocator(4, 4);
  BlockTable a;
  ASSERT_TRUE(allocator.grow(a, 8));
  BlockTable copy = a;
  allocator.release(a);
  EXPECT_THROW(allocator.release(copy), Error);  // already free
  EXPECT_EQ(allocator.freeBlocks(), 4);
  BlockTable foreign{7};
  EXPECT_THROW(allocator.release(foreign), Error);
  BlockTable c;
  ASSERT_TRUE(allocator.grow(c, 4));
  BlockTable twice{c[0], c[0]};
  EXPECT_THROW(allocator.release(twice), Error);
  EXPECT_EQ(allocator.freeBlocks(), 3);
}

TEST(BlockAllocatorTest, RejectsEmptyPools) {
  EXPECT_THROW(BlockAllocator(0, 16), Error);
  EXPECT_THROW(BlockAllocator(4, 0), Error);
}

}  // namespace
}  // namespace phx
