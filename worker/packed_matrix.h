// A weight matrix packed for the kernels in pieces of consecutive rows. Loading reads and packs one piece at a
// time, so the raw copy beside the packed model is never more than one piece (a whole lm_head would be 1 GB of
// Phi-4's); the matmul runs piece by piece into the columns of one output. Rows are independent in the kernels,
// so the pieces give bit-identical results to a single packed weight.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/packed_weight.h"

namespace phx {

// Raw BF16 bytes per piece: a multiple of the kernels' 64-row blocks for any width.
inline constexpr int64_t kPackPieceBytes = int64_t(64) << 20;

struct PackedMatrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<PackedWeight> pieces;  // in row order
  std::vector<int64_t> firstRow;     // [pieces]: the first row of each

  size_t bytes() const {
    size_t total = 0;
    for (const PackedWeight& piece : pieces) total += piece.bytes();
    return total;
  }
};

// Rows per piece for a matrix `cols` wide: whole 64-row blocks, about kPackPieceBytes of BF16.
inline int64_t packPieceRows(int64_t cols) {
  const int64_t blocks = kPackPieceBytes / (cols * 2 * kPackedRowBlock);
  return kPackedRowBlock * (blocks > 0 ? blocks : 1);
}

}  // namespace phx
