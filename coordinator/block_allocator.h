// Hands out the KV cache's fixed-size blocks to sequences. Every worker stores the same block ids for its own
// heads, so the coordinator alone decides which blocks a sequence holds (its block table); a worker only reads the
// tables sent with each step. Admission: a sequence grows only if the pool still has the blocks it needs.
// Blocks are reference counted so that several holders can share one: the prefix cache (coordinator/prefix_cache.h)
// holds a reference on each block it keeps, and every sequence that reuses a cached prefix holds one more. A block
// returns to the pool when its last holder releases it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace phx {

using BlockTable = std::vector<int32_t>;

class BlockAllocator {
 public:
  // Throws phx::Error (invalid argument) unless both are positive.
  BlockAllocator(int64_t numBlocks, int64_t blockSize);

  int64_t numBlocks() const { return numBlocks_; }
  int64_t blockSize() const { return blockSize_; }
  int64_t freeBlocks() const { return int64_t(free_.size()); }
  int64_t usedBlocks() const { return numBlocks_ - freeBlocks(); }

  int64_t blocksFor(int64_t tokens) const { return (tokens + blockSize_ - 1) / blockSize_; }
  // Whether `table` could grow to hold `contextTokens` tokens now.
  bool canHold(const BlockTable& table, int64_t contextTokens) const;

  // Appends blocks to `table` until it holds `contextTokens` tokens. Returns false and leaves the table unchanged
  // when the pool has too few free blocks (the caller waits or preempts).
  bool grow(BlockTable& table, int64_t contextTokens);
  // Drops one reference to each of the table's blocks (a block whose last reference goes returns to the pool) and
  // clears it. Each id must be held and listed once (checked: a double free would hand one block to two
  // sequences).
  void release(BlockTable& table);
  // One more holder of a block already held (throws phx::Error (invalid argument) for a free block).
  void retain(int32_t block);
  // Drops one reference to a single block.
  void release(int32_t block);
  // 0 for a free block.
  int32_t refCount(int32_t block) const { return refs_.at(size_t(block)); }

 private:
  int64_t numBlocks_;
  int64_t blockSize_;
  std::vector<int32_t> free_;  // a stack: the most recently freed block is reused first, while it is warm in cache
  std::vector<int32_t> refs_;  // per block: how many holders (0: free)
};

}  // namespace phx
