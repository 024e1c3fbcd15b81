#include "coordinator/block_allocator.h"

#include <algorithm>
#include <limits>
#include <string>

#include "common/error.h"

namespace phx {

BlockAllocator::BlockAllocator(int64_t numBlocks, int64_t blockSize)
    : numBlocks_(numBlocks), blockSize_(blockSize) {
  if (numBlocks < 1 || numBlocks > std::numeric_limits<int32_t>::max() || blockSize < 1) {
    throwInvalidArgument("KV block allocator: need a positive number of blocks (at most 2^31 - 1) and a positive "
                         "block size, got " + std::to_string(numBlocks) + " blocks of " + std::to_string(blockSize) +
                         " tokens");
  }
  free_.reserve(size_t(numBlocks));
  // Block 0 on top of the stack: a fresh pool hands out 0, 1, 2, ...
  for (int64_t block = numBlocks - 1; block >= 0; --block) free_.push_back(int32_t(block));
  refs_.assign(size_t(numBlocks), 0);
}

bool BlockAllocator::canHold(const BlockTable& table, int64_t contextTokens) const {
  return blocksFor(contextTokens) - int64_t(table.size()) <= freeBlocks();
}

bool BlockAllocator::grow(BlockTable& table, int64_t contextTokens) {
  if (!canHold(table, contextTokens)) return false;
  while (int64_t(table.size()) < blocksFor(contextTokens)) {
    const int32_t block = free_.back();
    free_.pop_back();
    refs_[size_t(block)] = 1;
    table.push_back(block);
  }
  return true;
}

void BlockAllocator::release(BlockTable& table) {
  // Check every id before freeing any, so a bad table leaves the pool as it was.
  BlockTable sorted = table;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    const int32_t block = sorted[i];
    if (block < 0 || block >= numBlocks_ || refs_[size_t(block)] == 0 || (i > 0 && sorted[i - 1] == block)) {
      throwInvalidArgument("KV block allocator: block " + std::to_string(block) +
                           " released but it is not held (outside the pool, already free or listed twice)");
    }
  }
  for (int32_t block : table) {
    if (--refs_[size_t(block)] == 0) free_.push_back(block);
  }
  table.clear();
}

void BlockAllocator::retain(int32_t block) {
  if (block < 0 || block >= numBlocks_ || refs_[size_t(block)] == 0) {
    throwInvalidArgument("KV block allocator: block " + std::to_string(block) +
                         " retained but it is not held (outside the pool or free)");
  }
  ++refs_[size_t(block)];
}

void BlockAllocator::release(int32_t block) {
  BlockTable one{block};
  release(one);
}

}  // namespace phx
