// Prefix caching: full KV blocks kept after their sequence ends, so a later request whose prompt starts with the
// same tokens (a shared system prompt, a multi-turn chat) reuses their keys and values and skips their prefill.
//
// A block is keyed by a hash of *all* tokens from the start of the sequence to the block's end (a chain: the hash
// of block i mixes the hash of block i - 1 with block i's tokens), because a block's keys and values depend on
// every token before it, not only its own. The cache holds one reference on each block it keeps
// (BlockAllocator's ref counts); blocks no sequence holds any more are evicted least recently used first when the
// pool runs short. Keys are 64-bit hashes with the block's tokens stored beside them and compared on lookup, so a
// hash collision can only cost a miss, never wrong keys and values.
#pragma once

#include <cstdint>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

#include "coordinator/block_allocator.h"

namespace phx {

class PrefixCache {
 public:
  // The hash of a block given the hash of the block before it (0 for the first block).
  static uint64_t chainHash(uint64_t previous, std::span<const int32_t> blockTokens);

  explicit PrefixCache(BlockAllocator& allocator) : allocator_(allocator) {}
  ~PrefixCache();
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;

  // The longest run of cached blocks that starts `tokens` (at most maxBlocks of them), each retained for the
  // caller, who releases them with its table.
  BlockTable acquire(std::span<const int32_t> tokens, int64_t maxBlocks);
  // Keeps `block`, whose keys and values are those of the full block `blockTokens` following the block hashed
  // `previous`; returns its hash (to chain the next block). A block already cached under this key is left as is.
  uint64_t insert(uint64_t previous, std::span<const int32_t> blockTokens, int32_t block);

  // Cached blocks no sequence holds: what eviction can give back.
  int64_t evictableBlocks() const;
  // Evicts unreferenced blocks, least recently used first, until the pool has `freeBlocks` free blocks or nothing
  // is left to evict; returns whether the pool reached it.
  bool evictUntilFree(int64_t freeBlocks);
  int64_t cachedBlocks() const { return int64_t(entries_.size()); }
  // Drops every block (their holders keep theirs).
  void clear();

 private:
  struct Entry {
    int32_t block;
    uint64_t previous;
    std::vector<int32_t> tokens;
    std::list<uint64_t>::iterator lru;
  };
  Entry* find(uint64_t previous, std::span<const int32_t> blockTokens, uint64_t& hash);

  BlockAllocator& allocator_;
  std::unordered_map<uint64_t, Entry> entries_;
  std::list<uint64_t> lru_;  // least recently used first
};

}  // namespace phx
