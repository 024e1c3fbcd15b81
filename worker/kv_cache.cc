#include "worker/kv_cache.h"

#include <string>

#include "common/error.h"

namespace phx {

KvCacheShape kvCacheShapeFor(const ModelConfig& config, const RankShard& shard, int64_t blockSize, int64_t tokens,
                             KvType type) {
  if (blockSize < 1 || tokens < 1) {
    throwInvalidArgument("KV cache: need a positive block size and token budget, got blocks of " +
                         std::to_string(blockSize) + " tokens for " + std::to_string(tokens) + " tokens");
  }
  KvCacheShape shape;
  shape.layers = shard.layers.count;
  shape.kvHeads = shard.kvHeads.count;
  shape.headDim = config.headDim();
  shape.blockSize = blockSize;
  shape.numBlocks = (tokens + blockSize - 1) / blockSize;
  shape.type = type;
  return shape;
}

int64_t kvTokensForBytes(const ModelConfig& config, const RankShard& shard, int64_t bytes, KvType type) {
  return bytes / kvCacheShapeFor(config, shard, 1, 1, type).bytesPerToken();
}

KvCache::KvCache(const KvCacheShape& shape)
    : shape_(shape),
      pool_({shape.kvHeads, shape.headDim, shape.blockSize, shape.type}, shape.layers, shape.numBlocks) {}

}  // namespace phx
