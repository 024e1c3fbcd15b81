#include "model/bpe.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <queue>

#include "common/check.h"

namespace phx {
namespace {

constexpr int32_t kNoMerge = std::numeric_limits<int32_t>::max();
// Longer pieces (long words, runs of one character) take the O(n log n) path.
constexpr size_t kHeapThreshold = 256;

uint64_t hashBytes(std::string_view bytes) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = bytes.size() * kMul;
  const char* p = bytes.data();
  size_t n = bytes.size();
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    h = (h ^ word) * kMul;
    h ^= h >> 32;
  }
  if (n > 0) {
    uint64_t word = 0;
    std::memcpy(&word, p, n);
    h = (h ^ word) * kMul;
  }
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 32);
}

}  // namespace

RankTable::RankTable(size_t expectedSize) : shortRanks_(256 + 65536, kAbsent) {
  size_t capacity = 16;
  while (capacity < expectedSize * 2) capacity *= 2;
  slots_.resize(capacity);
}

void RankTable::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.size() * 2, Slot{});
  const size_t mask = slots_.size() - 1;
  for (const Slot& slot : old) {
    if (slot.rank == kAbsent) continue;
    size_t index = hashBytes(std::string_view(arena_).substr(slot.offset, slot.length)) & mask;
    while (slots_[index].rank != kAbsent) index = (index + 1) & mask;
    slots_[index] = slot;
  }
}

bool RankTable::insert(std::string_view bytes, int32_t rank) {
  PHX_CHECK(rank >= 0);
  PHX_CHECK(!bytes.empty());
  if (find(bytes) != kAbsent) return false;
  maxLength_ = std::max(maxLength_, bytes.size());
  ++size_;
  if (bytes.size() <= 2) {
    shortRanks_[shortIndex(bytes)] = rank;
    return true;
  }
  if (size_ * 2 > slots_.size()) grow();
  const uint64_t hash = hashBytes(bytes);
  const size_t mask = slots_.size() - 1;
  size_t index = hash & mask;
  while (slots_[index].rank != kAbsent) index = (index + 1) & mask;
  slots_[index] = Slot{uint32_t(arena_.size()), uint32_t(bytes.size()), rank, uint32_t(hash >> 32)};
  arena_.append(bytes);
  return true;
}

int32_t RankTable::find(std::string_view bytes) const {
  if (bytes.size() > maxLength_ || bytes.empty()) return kAbsent;
  if (bytes.size() <= 2) return shortRanks_[shortIndex(bytes)];
  const uint64_t hash = hashBytes(bytes);
  const size_t mask = slots_.size() - 1;
  const auto tag = uint32_t(hash >> 32);
  for (size_t index = hash & mask;; index = (index + 1) & mask) {
    const Slot& slot = slots_[index];
    if (slot.rank == kAbsent) return kAbsent;
    if (slot.tag == tag && slot.length == bytes.size() &&
        std::memcmp(arena_.data() + slot.offset, bytes.data(), bytes.size()) == 0) {
      return slot.rank;
    }
  }
}

namespace detail {

// parts[i].start: where part i begins; parts[i].rank: the rank of part i merged with part i+1 (kNoMerge if that
// is no token). The last entry is a sentinel at piece.size().
void bytePairEncodeLinear(std::string_view piece, const RankTable& ranks, std::vector<int32_t>& out,
                          int32_t rankLimit) {
  struct Part {
    uint32_t start;
    int32_t rank;
  };
  auto rankOf = [&](size_t begin, size_t end) {
    const int32_t rank = ranks.find(piece.substr(begin, end - begin));
    return rank == RankTable::kAbsent || rank >= rankLimit ? kNoMerge : rank;
  };
  std::vector<Part> parts;
  parts.reserve(piece.size() + 1);
  for (size_t i = 0; i + 1 < piece.size(); ++i) parts.push_back({uint32_t(i), rankOf(i, i + 2)});
  parts.push_back({uint32_t(piece.size() - 1), kNoMerge});
  parts.push_back({uint32_t(piece.size()), kNoMerge});
  // The rank of parts i and i+1 merged, given parts i+2.. as they are now.
  auto mergedRank = [&](size_t i) {
    return i + 3 < parts.size() ? rankOf(parts[i].start, parts[i + 3].start) : kNoMerge;
  };
  while (true) {
    size_t best = 0;
    int32_t bestRank = kNoMerge;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      if (parts[i].rank < bestRank) {
        bestRank = parts[i].rank;
        best = i;
      }
    }
    if (bestRank == kNoMerge) break;
    if (best > 0) parts[best - 1].rank = mergedRank(best - 1);
    parts[best].rank = mergedRank(best);
    parts.erase(parts.begin() + std::ptrdiff_t(best) + 1);
  }
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const int32_t rank = ranks.find(piece.substr(parts[i].start, parts[i + 1].start - parts[i].start));
    PHX_CHECK(rank != RankTable::kAbsent);
    out.push_back(rank);
  }
}

// A doubly linked list of parts and a min-heap of candidate merges keyed by (rank, start). A popped candidate is
// current iff its part is alive and still has that rank; merging parts a and b re-ranks a and a's predecessor.
void bytePairEncodeHeap(std::string_view piece, const RankTable& ranks, std::vector<int32_t>& out) {
  const size_t n = piece.size();
  std::vector<uint32_t> next(n + 1), prev(n + 1);
  std::vector<int32_t> rank(n + 1, kNoMerge);
  std::vector<bool> alive(n + 1, true);
  for (size_t i = 0; i <= n; ++i) {
    next[i] = uint32_t(i + 1);
    prev[i] = uint32_t(i == 0 ? 0 : i - 1);
  }
  // Part i spans [i, next[i]); n is the end sentinel.
  auto pairRank = [&](uint32_t i) -> int32_t {
    if (i >= n || next[i] >= n) return kNoMerge;
    const int32_t r = ranks.find(piece.substr(i, next[next[i]] - i));
    return r == RankTable::kAbsent ? kNoMerge : r;
  };
  using Candidate = std::pair<int32_t, uint32_t>;  // (rank, start): smallest rank first, then leftmost
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  for (uint32_t i = 0; i < n; ++i) {
    rank[i] = pairRank(i);
    if (rank[i] != kNoMerge) heap.push({rank[i], i});
  }
  while (!heap.empty()) {
    const auto [r, i] = heap.top();
    heap.pop();
    if (!alive[i] || rank[i] != r) continue;
    const uint32_t merged = next[i];
    alive[merged] = false;
    next[i] = next[merged];
    prev[next[i]] = i;
    rank[i] = pairRank(i);
    if (rank[i] != kNoMerge) heap.push({rank[i], i});
    if (i > 0) {
      const uint32_t before = prev[i];
      rank[before] = pairRank(before);
      if (rank[before] != kNoMerge) heap.push({rank[before], before});
    }
  }
  for (uint32_t i = 0; i < n; i = next[i]) {
    const int32_t r = ranks.find(piece.substr(i, next[i] - i));
    PHX_CHECK(r != RankTable::kAbsent);
    out.push_back(r);
  }
}

}  // namespace detail

void bytePairEncode(std::string_view piece, const RankTable& ranks, std::vector<int32_t>& out) {
  PHX_CHECK(!piece.empty());
  const int32_t whole = ranks.find(piece);
  if (whole != RankTable::kAbsent) {
    out.push_back(whole);
  } else if (piece.size() <= kHeapThreshold) {
    detail::bytePairEncodeLinear(piece, ranks, out);
  } else {
    detail::bytePairEncodeHeap(piece, ranks, out);
  }
}

}  // namespace phx
