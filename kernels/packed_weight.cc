#include "kernels/packed_weight.h"

#include <cstring>
#include <vector>

#include "kernels/kernel_check.h"
#include "kernels/threading.h"

namespace phx {
namespace {

int64_t roundUp(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

void requireShape(const char* kernel, int64_t rows, int64_t cols) {
  PHX_KERNEL_REQUIRE(rows > 0 && cols > 0, kernel, ": weight shape must be positive, got [", rows, ", ", cols, "]");
}

// Fills one 64-row block from its rows' sources (nullptr for padding rows), pairs of k innermost:
// dst[p][n][2] = row n's elements 2p and 2p+1. Reading pair p of all 64 rows touches 64 cache lines that the next
// pairs reuse, so the source is read once and the destination written in order.
void packBf16Block(const uint16_t* const* rowPtrs, int64_t cols, int64_t paddedCols, uint16_t* dst) {
  for (int64_t p = 0; p < paddedCols / 2; ++p) {
    uint16_t* out = dst + p * 2 * kMatmulRowBlock;
    int64_t k = 2 * p;
    for (int64_t n = 0; n < kMatmulRowBlock; ++n) {
      const uint16_t* row = rowPtrs[n];
      out[2 * n] = (row != nullptr && k < cols) ? row[k] : 0;
      out[2 * n + 1] = (row != nullptr && k + 1 < cols) ? row[k + 1] : 0;
    }
  }
}

void packF32Block(const float* const* rowPtrs, int64_t cols, int64_t paddedCols, float* dst) {
  for (int64_t k = 0; k < paddedCols; ++k) {
    float* out = dst + k * kMatmulRowBlock;
    for (int64_t n = 0; n < kMatmulRowBlock; ++n) {
      const float* row = rowPtrs[n];
      out[n] = (row != nullptr && k < cols) ? row[k] : 0.0f;
    }
  }
}

}  // namespace

const char* weightTypeName(WeightType type) {
  switch (type) {
    case WeightType::kF32: return "f32";
    case WeightType::kBf16: return "bf16";
  }
  return "?";
}

PackedWeight::PackedWeight(WeightType type, int64_t rows, int64_t cols)
    : type_(type),
      rows_(rows),
      cols_(cols),
      paddedRows_(roundUp(rows, kMatmulRowBlock)),
      paddedCols_(roundUp(cols, kMatmulColBlock)),
      storage_(size_t(paddedRows_) * size_t(paddedCols_) * (type == WeightType::kBf16 ? 2 : 4)) {}

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
      packBf16Block(&rowPtrs[size_t(b * kMatmulRowBlock)], cols, packed.paddedCols_, base + b * packed.paddedCols_ * 64);
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
      packF32Block(&rowPtrs[size_t(b * kMatmulRowBlock)], cols, packed.paddedCols_, base + b * packed.paddedCols_ * 64);
    }
  });
  return packed;
}

float PackedWeight::at(int64_t row, int64_t col) const {
  PHX_KERNEL_REQUIRE(row >= 0 && row < rows_ && col >= 0 && col < cols_, "PackedWeight::at: (", row, ", ", col,
                     ") is outside [", rows_, ", ", cols_, "]");
  int64_t block = row / kMatmulRowBlock;
  int64_t n = row % kMatmulRowBlock;
  if (type_ == WeightType::kF32) return f32Block(block)[col * 64 + n];
  uint32_t bits = uint32_t(bf16Block(block)[(col / 2) * 128 + n * 2 + col % 2]) << 16;
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

}  // namespace phx
