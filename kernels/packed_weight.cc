#include "kernels/packed_weight.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/kernel_check.h"
#include "kernels/quantize.h"
#include "kernels/threading.h"

namespace phx {
namespace {

void requireShape(const char* kernel, int64_t rows, int64_t cols) {
  PHX_KERNEL_REQUIRE(rows > 0 && cols > 0, kernel, ": weight shape must be positive, got [", rows, ", ", cols, "]");
}

// Fills one 64-row block from its rows' sources (nullptr for padding rows), pairs of k innermost:
// dst[p][n][2] = row n's elements 2p and 2p+1. Reading pair p of all 64 rows touches 64 cache lines that the next
// pairs reuse, so the source is read once and the destination written in order.
void packBf16Block(const uint16_t* const* rowPtrs, int64_t cols, int64_t paddedCols, uint16_t* dst) {
  for (int64_t p = 0; p < paddedCols / 2; ++p) {
    uint16_t* out = dst + p * 2 * kPackedRowBlock;
    int64_t k = 2 * p;
    for (int64_t n = 0; n < kPackedRowBlock; ++n) {
      const uint16_t* row = rowPtrs[n];
      out[2 * n] = (row != nullptr && k < cols) ? row[k] : 0;
      out[2 * n + 1] = (row != nullptr && k + 1 < cols) ? row[k + 1] : 0;
    }
  }
}

void packF32Block(const float* const* rowPtrs, int64_t cols, int64_t paddedCols, float* dst) {
  for (int64_t k = 0; k < paddedCols; ++k) {
    float* out = dst + k * kPackedRowBlock;
    for (int64_t n = 0; n < kPackedRowBlock; ++n) {
      const float* row = rowPtrs[n];
      out[n] = (row != nullptr && k < cols) ? row[k] : 0.0f;
    }
  }
}

// INT8: dst[q][n][4] = row n's elements 4q .. 4q+3; returns nothing, the row sums are taken by the caller.
void packInt8Block(const int8_t* const* rowPtrs, int64_t cols, int64_t paddedCols, int8_t* dst) {
  for (int64_t q = 0; q < paddedCols / 4; ++q) {
    int8_t* out = dst + q * 4 * kPackedRowBlock;
    for (int64_t n = 0; n < kPackedRowBlock; ++n) {
      const int8_t* row = rowPtrs[n];
      for (int64_t i = 0; i < 4; ++i) {
        const int64_t k = 4 * q + i;
        out[4 * n + i] = (row != nullptr && k < cols) ? row[k] : 0;
      }
    }
  }
}

}  // namespace

PackedWeight::PackedWeight(WeightType type, int64_t rows, int64_t cols)
    : type_(type),
      rows_(rows),
      cols_(cols),
      paddedRows_(roundUpTo(rows, kPackedRowBlock)),
      paddedCols_(roundUpTo(cols, kPackedColBlock)),
      storage_(size_t(paddedRows_) * size_t(paddedCols_) *
               (type == WeightType::kInt8 ? 1 : (type == WeightType::kBf16 ? 2 : 4))) {
  if (type == WeightType::kInt8) {
    rowScales_ = AlignedBuffer(size_t(paddedRows_) * sizeof(float));
    rowSums_ = AlignedBuffer(size_t(paddedRows_) * sizeof(int32_t));
  }
}

PackedWeight PackedWeight::packBf16(const uint16_t* w, int64_t rows, int64_t cols, int64_t rowStride) {
  PHX_KERNEL_REQUIRE(w != nullptr, "packBf16: null weight");
  PHX_KERNEL_REQUIRE(rowStride >= cols, "packBf16: row stride ", rowStride, " is below the column count ", cols);
  return packBf16Rows(rows, cols, [&](int64_t row) { return w + row * rowStride; });
}

PackedWeight PackedWeight::packF32(const float* w, int64_t rows, int64_t cols, int64_t rowStride) {
  PHX_KERNEL_REQUIRE(w != nullptr, "packF32: null weight");
  PHX_KERNEL_REQUIRE(rowStride >= cols, "packF32: row stride ", rowStride, " is below the column count ", cols);
  return packF32Rows(rows, cols, [&](int64_t row) { return w + row * rowStride; });
}

PackedWeight PackedWeight::packBf16Rows(int64_t rows, int64_t cols, const Bf16RowSource& rowSource) {
  requireShape("packBf16", rows, cols);
  PackedWeight packed(WeightType::kBf16, rows, cols);
  // Row pointers are gathered serially: the source callback need not be thread-safe.
  std::vector<const uint16_t*> rowPtrs(size_t(packed.paddedRows_), nullptr);
  for (int64_t r = 0; r < rows; ++r) {
    rowPtrs[size_t(r)] = rowSource(r);
    PHX_KERNEL_REQUIRE(rowPtrs[size_t(r)] != nullptr, "packBf16: row ", r, " has no data");
  }
  uint16_t* base = packed.storage_.as<uint16_t>();
  parallelFor(packed.rowBlocks(), 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      packBf16Block(&rowPtrs[size_t(b * kPackedRowBlock)], cols, packed.paddedCols_,
                    base + b * packed.paddedCols_ * 64);
    }
  });
  return packed;
}

PackedWeight PackedWeight::packF32Rows(int64_t rows, int64_t cols, const F32RowSource& rowSource) {
  requireShape("packF32", rows, cols);
  PackedWeight packed(WeightType::kF32, rows, cols);
  std::vector<const float*> rowPtrs(size_t(packed.paddedRows_), nullptr);
  for (int64_t r = 0; r < rows; ++r) {
    rowPtrs[size_t(r)] = rowSource(r);
    PHX_KERNEL_REQUIRE(rowPtrs[size_t(r)] != nullptr, "packF32: row ", r, " has no data");
  }
  float* base = packed.storage_.as<float>();
  parallelFor(packed.rowBlocks(), 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      packF32Block(&rowPtrs[size_t(b * kPackedRowBlock)], cols, packed.paddedCols_, base + b * packed.paddedCols_ * 64);
    }
  });
  return packed;
}

PackedWeight PackedWeight::packInt8Rows(int64_t rows, int64_t cols, const Int8RowSource& rowSource,
                                       const float* scales) {
  requireShape("packInt8", rows, cols);
  PHX_KERNEL_REQUIRE(scales != nullptr, "packInt8: null scales");
  PackedWeight packed(WeightType::kInt8, rows, cols);
  std::vector<const int8_t*> rowPtrs(size_t(packed.paddedRows_), nullptr);
  for (int64_t r = 0; r < rows; ++r) {
    rowPtrs[size_t(r)] = rowSource(r);
    PHX_KERNEL_REQUIRE(rowPtrs[size_t(r)] != nullptr, "packInt8: row ", r, " has no data");
    PHX_KERNEL_REQUIRE(scales[r] >= 0.0f && scales[r] < 1e30f, "packInt8: row ", r, " has scale ", scales[r],
                       " (expected a finite value >= 0)");
  }
  int8_t* base = packed.storage_.as<int8_t>();
  float* rowScales = packed.rowScales_.as<float>();
  int32_t* rowSums = packed.rowSums_.as<int32_t>();
  parallelFor(packed.rowBlocks(), 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      packInt8Block(&rowPtrs[size_t(b * kPackedRowBlock)], cols, packed.paddedCols_,
                    base + b * packed.paddedCols_ * 64);
      for (int64_t r = b * kPackedRowBlock; r < std::min(rows, (b + 1) * kPackedRowBlock); ++r) {
        int32_t sum = 0;
        for (int64_t k = 0; k < cols; ++k) sum += rowPtrs[size_t(r)][k];
        rowSums[r] = sum;
        rowScales[r] = scales[r];
      }
    }
  });
  return packed;
}

PackedWeight PackedWeight::quantizeBf16Rows(int64_t rows, int64_t cols, const Bf16RowSource& rowSource) {
  requireShape("quantizeBf16", rows, cols);
  std::vector<const uint16_t*> sources(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    sources[size_t(r)] = rowSource(r);
    PHX_KERNEL_REQUIRE(sources[size_t(r)] != nullptr, "quantizeBf16: row ", r, " has no data");
  }
  // A whole int8 copy of the rows: half the BF16 source the caller holds (one loader piece at a time).
  std::vector<int8_t> quantized(static_cast<size_t>(rows * cols));
  std::vector<float> scales(static_cast<size_t>(rows));
  parallelFor(rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      scales[size_t(r)] = quantizeBf16RowInt8(sources[size_t(r)], cols, quantized.data() + r * cols);
    }
  });
  return packInt8Rows(rows, cols, [&](int64_t row) { return quantized.data() + row * cols; }, scales.data());
}

float PackedWeight::at(int64_t row, int64_t col) const {
  PHX_KERNEL_REQUIRE(row >= 0 && row < rows_ && col >= 0 && col < cols_, "PackedWeight::at: (", row, ", ", col,
                     ") is outside [", rows_, ", ", cols_, "]");
  int64_t block = row / kPackedRowBlock;
  int64_t n = row % kPackedRowBlock;
  if (type_ == WeightType::kF32) return f32Block(block)[col * 64 + n];
  if (type_ == WeightType::kInt8) return rowScales()[row] * float(int8Block(block)[(col / 4) * 256 + n * 4 + col % 4]);
  uint32_t bits = uint32_t(bf16Block(block)[(col / 2) * 128 + n * 2 + col % 2]) << 16;
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

}  // namespace phx
