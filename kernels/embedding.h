// Embedding lookup for a vocabulary slice: a rank holds table rows [rowBegin, rowEnd) of the full [vocab, hidden]
// BF16 embedding. Ids outside the slice give zero rows, so the ranks' outputs summed (all-reduce) are the full
// lookup.
#pragma once

#include <cstdint>

namespace phx {

// table: [rowEnd - rowBegin, hidden] BF16 bits, rows `tableStride` elements apart (>= hidden); ids: [count];
// out: [count, hidden] fp32.
void embeddingLookup(const uint16_t* table, int64_t tableStride, int64_t rowBegin, int64_t rowEnd, int64_t hidden,
                     const int32_t* ids, int64_t count, float* out);
inline void embeddingLookup(const uint16_t* table, int64_t rowBegin, int64_t rowEnd, int64_t hidden,
                            const int32_t* ids, int64_t count, float* out) {
  embeddingLookup(table, hidden, rowBegin, rowEnd, hidden, ids, count, out);
}

}  // namespace phx
