// A matmul weight W [rows = output features, cols = input features] (row-major, as a checkpoint stores it),
// repacked once at load into the layout the kernels stream. The source can be freed afterwards: a PackedWeight
// holds the only copy, in its own dtype (BF16 stays BF16; no f32 copy is ever kept).
//
// Layout (both dtypes): rows padded to kPackedRowBlock, cols to kPackedColBlock, with zeros; blocks of 64 rows,
// one after another, each holding all of K:
//   BF16: [rows/64][cols/2][64][2]  element (n, k) at (n/64)*cols*64 + (k/2)*128 + (n%64)*2 + k%2
//   F32:  [rows/64][cols][64]       element (n, k) at (n/64)*cols*64 + k*64 + n%64
// One 64-byte load is then 16 rows x 2 k of BF16 pairs, exactly vdpbf16ps' operand, and the BF16 layout is
// oneDNN's BA16a64b2a for the K x N weight (its "any" choice for bf16 brgemm here), the F32 one its BA16a64b.
// A tensor-parallel split that keeps a rank's rows a multiple of 64 wastes no padding.
//
// INT8 (per-output-channel symmetric, kernels/quantize.h): [rows/64][cols/4][64][4] int8, element (n, k) at
//   (n/64)*cols*64 + (k/4)*256 + (n%64)*4 + k%4: one 64-byte load is 16 rows x 4 k, vpdpbusd's s8 operand;
//   plus per row the f32 scale (w ~ scale * q) and the int32 sum of its q (for the u8 activations' zero point).
#pragma once

#include <cstdint>
#include <functional>

#include "common/weight_type.h"
#include "kernels/aligned_buffer.h"

namespace phx {

class PackedWeight {
 public:
  using Bf16RowSource = std::function<const uint16_t*(int64_t row)>;  // row r's `cols` BF16 bit patterns
  using F32RowSource = std::function<const float*(int64_t row)>;
  using Int8RowSource = std::function<const int8_t*(int64_t row)>;  // row r's `cols` quantized values

  PackedWeight() = default;

  // w: [rows, cols] with rows `rowStride` elements apart (a column slice of a wider tensor has rowStride > cols).
  static PackedWeight packBf16(const uint16_t* w, int64_t rows, int64_t cols, int64_t rowStride);
  static PackedWeight packBf16(const uint16_t* w, int64_t rows, int64_t cols) { return packBf16(w, rows, cols, cols); }
  static PackedWeight packF32(const float* w, int64_t rows, int64_t cols, int64_t rowStride);
  static PackedWeight packF32(const float* w, int64_t rows, int64_t cols) { return packF32(w, rows, cols, cols); }
  // Rows gathered from anywhere (a rank's Q|K|V rows, or its gate then up rows): rowSource(r) for r in [0, rows).
  static PackedWeight packBf16Rows(int64_t rows, int64_t cols, const Bf16RowSource& rowSource);
  static PackedWeight packF32Rows(int64_t rows, int64_t cols, const F32RowSource& rowSource);
  // INT8 rows already quantized (a quantized checkpoint): scales [rows], w[r, k] ~ scales[r] * q[r, k].
  static PackedWeight packInt8Rows(int64_t rows, int64_t cols, const Int8RowSource& rowSource, const float* scales);
  // BF16 rows quantized here (quantizeBf16RowInt8 per row), then packed as packInt8Rows would.
  static PackedWeight quantizeBf16Rows(int64_t rows, int64_t cols, const Bf16RowSource& rowSource);
  static PackedWeight quantizeBf16(const uint16_t* w, int64_t rows, int64_t cols) {
    return quantizeBf16Rows(rows, cols, [w, cols](int64_t row) { return w + row * cols; });
  }

  WeightType type() const { return type_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t paddedRows() const { return paddedRows_; }
  int64_t paddedCols() const { return paddedCols_; }
  int64_t rowBlocks() const { return paddedRows_ / kPackedRowBlock; }
  size_t bytes() const { return storage_.bytes() + rowScales_.bytes() + rowSums_.bytes(); }
  bool empty() const { return rows_ == 0; }

  // Block b (rows [64b, 64b + 64)): paddedCols() * 64 elements of the weight's dtype.
  const uint16_t* bf16Block(int64_t block) const { return storage_.as<uint16_t>() + block * paddedCols_ * 64; }
  const float* f32Block(int64_t block) const { return storage_.as<float>() + block * paddedCols_ * 64; }
  const int8_t* int8Block(int64_t block) const { return storage_.as<int8_t>() + block * paddedCols_ * 64; }
  // INT8 only, [paddedRows()] each (0 for padding rows): the dequantization scale and sum_k q[n, k].
  const float* rowScales() const { return rowScales_.as<float>(); }
  const int32_t* rowSums() const { return rowSums_.as<int32_t>(); }
  const void* data() const { return storage_.data(); }

  // One element as f32, for tests and debugging.
  float at(int64_t row, int64_t col) const;

 private:
  PackedWeight(WeightType type, int64_t rows, int64_t cols);

  WeightType type_ = WeightType::kF32;
  int64_t rows_ = 0;
  int64_t cols_ = 0;
  int64_t paddedRows_ = 0;
  int64_t paddedCols_ = 0;
  AlignedBuffer storage_;
  AlignedBuffer rowScales_;  // INT8: f32 [paddedRows]
  AlignedBuffer rowSums_;    // INT8: int32 [paddedRows]
};

}  // namespace phx
