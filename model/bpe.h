// Byte-pair encoding exactly as tiktoken does it: a piece that is itself a token is that token; otherwise start from
// single bytes and repeatedly merge the adjacent pair whose concatenation has the lowest rank (the leftmost such
// pair on ties) until no adjacent pair concatenates to a token.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace phx {

// Token bytes -> rank (the token id): lookups are the hot path of encoding (one per piece at least, one per
// candidate pair in BPE) and cost a cache miss each. Strings of one or two bytes, the bulk of BPE's lookups, sit in
// a direct table (256 + 65536 entries, 260 KiB: stays in L2); longer ones in an open-addressing hash table over one
// byte arena.
class RankTable {
 public:
  static constexpr int32_t kAbsent = -1;

  explicit RankTable(size_t expectedSize = 0);
  // False (and no change) when `bytes` is already present.
  bool insert(std::string_view bytes, int32_t rank);
  int32_t find(std::string_view bytes) const;
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint32_t offset = 0;  // into arena_
    uint32_t length = 0;
    int32_t rank = kAbsent;  // kAbsent: empty slot
    uint32_t tag = 0;        // high hash bits, to skip most string compares
  };
  void grow();
  static size_t shortIndex(std::string_view bytes) {
    return bytes.size() == 1 ? uint8_t(bytes[0]) : 256 + (size_t(uint8_t(bytes[0])) << 8 | uint8_t(bytes[1]));
  }

  std::vector<int32_t> shortRanks_;  // [shortIndex]: ranks of the 1- and 2-byte strings
  std::vector<Slot> slots_;
  std::string arena_;
  size_t size_ = 0;
  size_t maxLength_ = 0;  // no longer string can be a token: lets long candidate merges skip hashing
};

// Appends the ranks BPE gives `piece` (non-empty; every single byte must be a token).
void bytePairEncode(std::string_view piece, const RankTable& ranks, std::vector<int32_t>& out);

namespace detail {
// The two algorithms bytePairEncode picks between by length; exposed so tests can check they agree.
// Linear: tiktoken's own O(n^2) scan, fastest for the short pieces that make up almost all text. Merges whose rank
// is rankLimit or more are not made (Hugging Face's tiktoken converter derives merges.txt this way).
void bytePairEncodeLinear(std::string_view piece, const RankTable& ranks, std::vector<int32_t>& out,
                          int32_t rankLimit = INT32_MAX);
// Heap: the same merges in O(n log n) via a priority queue ordered by (rank, position), for long pieces.
void bytePairEncodeHeap(std::string_view piece, const RankTable& ranks, std::vector<int32_t>& out);
}  // namespace detail

}  // namespace phx
