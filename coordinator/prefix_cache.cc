#include "coordinator/prefix_cache.h"

#include <algorithm>

namespace phx {
namespace {

// splitmix64's finaliser: a cheap mix with good avalanche, enough for a hash table key.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t PrefixCache::chainHash(uint64_t previous, std::span<const int32_t> blockTokens) {
  uint64_t hash = mix(previous ^ 0x5048414c414e5801ULL);
  for (int32_t token : blockTokens) hash = mix(hash ^ uint64_t(uint32_t(token)));
  return hash;
}

PrefixCache::~PrefixCache() { clear(); }

PrefixCache::Entry* PrefixCache::find(uint64_t previous, std::span<const int32_t> blockTokens, uint64_t& hash) {
  hash = chainHash(previous, blockTokens);
  const auto it = entries_.find(hash);
  if (it == entries_.end() || it->second.previous != previous ||
      !std::equal(blockTokens.begin(), blockTokens.end(), it->second.tokens.begin(), it->second.tokens.end())) {
    return nullptr;
  }
  return &it->second;
}

BlockTable PrefixCache::acquire(std::span<const int32_t> tokens, int64_t maxBlocks) {
  const int64_t blockSize = allocator_.blockSize();
  BlockTable blocks;
  uint64_t previous = 0;
  for (int64_t i = 0; i < maxBlocks && (i + 1) * blockSize <= int64_t(tokens.size()); ++i) {
    uint64_t hash = 0;
    Entry* entry = find(previous, tokens.subspan(size_t(i * blockSize), size_t(blockSize)), hash);
    if (entry == nullptr) break;
    lru_.splice(lru_.end(), lru_, entry->lru);  // most recently used now
    allocator_.retain(entry->block);
    blocks.push_back(entry->block);
    previous = hash;
  }
  return blocks;
}

uint64_t PrefixCache::insert(uint64_t previous, std::span<const int32_t> blockTokens, int32_t block) {
  uint64_t hash = 0;
  if (find(previous, blockTokens, hash) != nullptr || entries_.count(hash) != 0) return hash;
  allocator_.retain(block);
  lru_.push_back(hash);
  entries_.emplace(hash, Entry{block, previous, {blockTokens.begin(), blockTokens.end()}, std::prev(lru_.end())});
  return hash;
}

int64_t PrefixCache::evictableBlocks() const {
  int64_t count = 0;
  for (const auto& [hash, entry] : entries_) count += allocator_.refCount(entry.block) == 1;
  return count;
}

bool PrefixCache::evictUntilFree(int64_t freeBlocks) {
  for (auto it = lru_.begin(); it != lru_.end() && allocator_.freeBlocks() < freeBlocks;) {
    const auto entry = entries_.find(*it);
    if (allocator_.refCount(entry->second.block) != 1) {
      ++it;  // a running sequence still reads it
      continue;
    }
    allocator_.release(entry->second.block);
    entries_.erase(entry);
    it = lru_.erase(it);
  }
  return allocator_.freeBlocks() >= freeBlocks;
}

void PrefixCache::clear() {
  for (auto& [hash, entry] : entries_) allocator_.release(entry.block);
  entries_.clear();
  lru_.clear();
}

}  // namespace phx
