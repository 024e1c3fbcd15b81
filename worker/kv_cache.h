// The KV cache of one rank: for each of its layers, the keys and values of its KV heads, in fixed-size blocks of
// tokens, stored as the attention kernel reads them (kernels/kv_cache.h: BF16 by default, F32 or INT8). Which blocks a
// sequence holds is the caller's business (the block table sent with each step); the cache is only the pool. Memory is
// reserved up front and becomes resident as blocks are first written.
#pragma once

#include <cstdint>

#include "kernels/kv_cache.h"
#include "model/config.h"
#include "partition/rank_shard.h"

namespace phx {

struct KvCacheShape {
  int64_t layers = 0;
  int64_t kvHeads = 0;
  int64_t headDim = 0;
  int64_t blockSize = 0;  // tokens per block
  int64_t numBlocks = 0;
  KvType type = KvType::kBf16;

  int64_t elementBytes() const { return type == KvType::kInt8 ? 1 : (type == KvType::kBf16 ? 2 : 4); }
  // INT8 keeps a 4-byte scale per token, head and K/V beside the elements.
  int64_t bytesPerToken() const {
    return layers * 2 * kvHeads * (headDim * elementBytes() + (type == KvType::kInt8 ? 4 : 0));
  }
  int64_t bytes() const { return bytesPerToken() * blockSize * numBlocks; }
  int64_t tokenCapacity() const { return blockSize * numBlocks; }
};

// The shape holding at least `tokens` tokens of this shard's layers and KV heads. Throws phx::Error (invalid
// argument) unless tokens and blockSize are positive.
KvCacheShape kvCacheShapeFor(const ModelConfig& config, const RankShard& shard, int64_t blockSize, int64_t tokens,
                             KvType type = KvType::kBf16);
// The most tokens `bytes` of cache hold for this shard (for sizing a cache by memory rather than tokens).
int64_t kvTokensForBytes(const ModelConfig& config, const RankShard& shard, int64_t bytes,
                         KvType type = KvType::kBf16);

class KvCache {
 public:
  explicit KvCache(const KvCacheShape& shape);

  const KvCacheShape& shape() const { return shape_; }
  // Layer i of this rank's layers, as the attention kernel takes it.
  PagedKv layer(int64_t index) { return pool_.layer(index); }

 private:
  KvCacheShape shape_;
  PagedKvCache pool_;
};

}  // namespace phx
