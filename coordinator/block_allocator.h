// Hands out the KV cache's fixed-size blocks to sequences. Every worker stores the same block ids for its own
// heads, so the coordinator alone decides which blocks a sequence holds (its block table); a worker only reads the
// tables sent with each step. Admission: a sequence grows only if the pool still has the blocks it needs.
#pragma once

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
  // Returns the table's blocks to the pool and clears it. Each id must have come from this allocator and not have
  // been freed since (checked: a double free would hand one block to two sequences).
  void release(BlockTable& table);

 private:
  int64_t numBlocks_;
  int64_t blockSize_;
  std::vector<int32_t> free_;  // a stack: the most recently freed block is reused first, while it is warm in cache
  std::vector<bool> inUse_;
};

}  // namespace phx
