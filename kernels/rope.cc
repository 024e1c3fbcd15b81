#include "kernels/rope.h"

#include <cmath>

#include "kernels/kernel_check.h"
#include "kernels/simd.h"
#include "kernels/threading.h"
#include "kernels/vec_math.h"

namespace phx {

RopeTable::RopeTable(int64_t rotaryDim, double theta, int64_t maxPositions)
    : rotaryDim_(rotaryDim), maxPositions_(maxPositions), theta_(theta) {
  PHX_KERNEL_REQUIRE(rotaryDim > 0 && rotaryDim % 2 == 0, "RopeTable: rotary dimension must be even and positive, got ",
                     rotaryDim);
  PHX_KERNEL_REQUIRE(theta > 1.0, "RopeTable: theta must exceed 1, got ", theta);
  PHX_KERNEL_REQUIRE(maxPositions > 0, "RopeTable: max positions must be positive, got ", maxPositions);
  int64_t half = rotaryDim / 2;
  cos_.resize(size_t(maxPositions * half));
  sin_.resize(size_t(maxPositions * half));
  for (int64_t i = 0; i < half; ++i) {
    double frequency = std::pow(theta, -double(2 * i) / double(rotaryDim));
    for (int64_t p = 0; p < maxPositions; ++p) {
      cos_[size_t(p * half + i)] = float(std::cos(double(p) * frequency));
      sin_[size_t(p * half + i)] = float(std::sin(double(p) * frequency));
    }
  }
}

namespace {

void rotateHead(float* head, int64_t half, const float* cos, const float* sin) {
  for (int64_t i = 0; i < half; i += 16) {
    __mmask16 mask = vec::firstLanes(half - i);
    __m512 a = _mm512_maskz_loadu_ps(mask, head + i);
    __m512 b = _mm512_maskz_loadu_ps(mask, head + half + i);
    __m512 c = _mm512_maskz_loadu_ps(mask, cos + i);
    __m512 s = _mm512_maskz_loadu_ps(mask, sin + i);
    _mm512_mask_storeu_ps(head + i, mask, _mm512_fmsub_ps(a, c, _mm512_mul_ps(b, s)));
    _mm512_mask_storeu_ps(head + half + i, mask, _mm512_fmadd_ps(b, c, _mm512_mul_ps(a, s)));
  }
}

}  // namespace

void applyRope(float* x, int64_t rows, int64_t stride, int64_t heads, int64_t headDim, const int64_t* positions,
               const RopeTable& table) {
  PHX_KERNEL_REQUIRE(rows >= 0 && heads > 0 && headDim >= table.rotaryDim(), "applyRope: bad shape: rows ", rows,
                     ", heads ", heads, ", head dim ", headDim, " (rotary dim ", table.rotaryDim(), ")");
  PHX_KERNEL_REQUIRE(stride >= heads * headDim, "applyRope: row stride ", stride, " is shorter than ", heads,
                     " heads of ", headDim);
  PHX_KERNEL_REQUIRE(rows == 0 || (x != nullptr && positions != nullptr), "applyRope: null buffer");
  for (int64_t r = 0; r < rows; ++r) {
    PHX_KERNEL_REQUIRE(positions[r] >= 0 && positions[r] < table.maxPositions(), "applyRope: position ",
                       positions[r], " of row ", r, " is outside the table's [0, ", table.maxPositions(), ")");
  }
  int64_t half = table.rotaryDim() / 2;
  parallelFor(rows, 4, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* cos = table.cos(positions[r]);
      const float* sin = table.sin(positions[r]);
      for (int64_t h = 0; h < heads; ++h) rotateHead(x + r * stride + h * headDim, half, cos, sin);
    }
  });
}

}  // namespace phx
