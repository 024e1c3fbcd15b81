// A contiguous run of indices [begin, begin + count): a shard's heads, columns or rows, the rows of a tensor a
// rank reads, a thread's share of a loop. One type for all of them, so a range passes between partition, the
// checkpoint reader and the kernels without conversion.
#pragma once

#include <cstdint>

namespace phx {

struct IndexRange {
  int64_t begin = 0;
  int64_t count = 0;

  int64_t end() const { return begin + count; }
  bool contains(int64_t index) const { return index >= begin && index < end(); }
  bool operator==(const IndexRange&) const = default;
};

}  // namespace phx
