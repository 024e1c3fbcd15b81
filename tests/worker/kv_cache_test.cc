#include "worker/kv_cache.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "model/presets.h"

namespace phx {
namespace {

TEST(KvCacheTest, ShapeFollowsTheShardAndTokenBudget) {
  const ModelConfig& config = findModelPreset("phi4").config;
  RankShard shard = wholeModelShard(config);
  shard.layers = {0, 4};
  shard.kvHeads = {2, 3};
  const KvCacheShape shape = kvCacheShapeFor(config, shard, 16, 1000);
  EXPECT_EQ(shape.layers, 4);
  EXPECT_EQ(shape.kvHeads, 3);
  EXPECT_EQ(shape.headDim, 128);
  EXPECT_EQ(shape.numBlocks, 63);  // ceil(1000 / 16)
  EXPECT_EQ(shape.bytesPerToken(), 4 * 2 * 3 * 128 * 2);  // BF16 keys and values
  EXPECT_EQ(shape.bytes(), shape.bytesPerToken() * 16 * 63);
  EXPECT_EQ(kvCacheShapeFor(config, shard, 16, 1000, KvType::kF32).bytesPerToken(), 4 * 2 * 3 * 128 * 4);
  EXPECT_EQ(kvTokensForBytes(config, shard, shape.bytesPerToken() * 100 + 5), 100);
  EXPECT_THROW(kvCacheShapeFor(config, shard, 0, 10), Error);
  EXPECT_THROW(kvCacheShapeFor(config, shard, 16, 0), Error);
}

// Phi-4 whole: 40 layers x 10 KV heads x 128 x 2 x 2 bytes = 200 KiB a token; the pool is reserved, not resident.
TEST(KvCacheTest, ReservesThePoolTheKernelsRead) {
  const ModelConfig& config = findModelPreset("phi4").config;
  KvCache cache(kvCacheShapeFor(config, wholeModelShard(config), 16, 4096));
  EXPECT_EQ(cache.shape().bytesPerToken(), 204800);
  const PagedKv first = cache.layer(0), last = cache.layer(39);
  EXPECT_EQ(first.numBlocks, 256);
  EXPECT_EQ(first.shape.kvHeads, 10);
  EXPECT_NE(first.keys, last.keys);
  EXPECT_NE(first.keys, first.values);
}

}  // namespace
}  // namespace phx
