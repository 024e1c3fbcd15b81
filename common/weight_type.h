// The types a matrix weight is held in, and the packed layout both its loader and its planner count bytes by.
// kernels/packed_weight.h packs to this layout; partition/ estimates a shard's memory from it without linking any
// kernel, so the two can never disagree on the padding.
#pragma once

#include <cstdint>

namespace phx {

enum class WeightType : uint8_t { kF32, kBf16, kInt8 };  // the matmul dispatches on the weight's type

constexpr const char* weightTypeName(WeightType type) {
  switch (type) {
    case WeightType::kF32:
      return "f32";
    case WeightType::kBf16:
      return "bf16";
    case WeightType::kInt8:
      return "int8";
  }
  return "?";
}

// A packed matrix [rows, cols] has rows padded to a multiple of kPackedRowBlock and cols to one of
// kPackedColBlock. A shard whose row counts are multiples of kPackedRowBlock wastes nothing on padding, which is
// why plans split MLP columns and vocab rows in such blocks.
inline constexpr int64_t kPackedRowBlock = 64;  // weight rows (output features) per packed block
inline constexpr int64_t kPackedColBlock = 16;  // input features are padded to a multiple of this

// An INT8 row also carries its f32 scale and the int32 sum of its values.
inline constexpr int64_t kInt8RowExtraBytes = 4 + 4;

constexpr int64_t roundUpTo(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// Resident bytes of one packed matrix [rows, cols] of `type`.
constexpr int64_t packedMatrixBytes(int64_t rows, int64_t cols, WeightType type) {
  const int64_t paddedRows = roundUpTo(rows, kPackedRowBlock), paddedCols = roundUpTo(cols, kPackedColBlock);
  switch (type) {
    case WeightType::kF32:
      return paddedRows * paddedCols * 4;
    case WeightType::kBf16:
      return paddedRows * paddedCols * 2;
    case WeightType::kInt8:
      return paddedRows * (paddedCols + kInt8RowExtraBytes);
  }
  return 0;
}

}  // namespace phx
