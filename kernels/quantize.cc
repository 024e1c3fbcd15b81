#include "kernels/quantize.h"

#include <cmath>
#include <cstring>

#include "kernels/simd.h"
#include "kernels/threading.h"
#include "kernels/vec_math.h"

namespace phx {
namespace {

float bf16Value(uint16_t bits) {
  uint32_t wide = uint32_t(bits) << 16;
  float value;
  std::memcpy(&value, &wide, sizeof value);
  return value;
}

// q = round-half-even(v * inverse), clamped (a NaN weight is a broken checkpoint; it maps to 0 rather than UB).
int8_t quantizeValue(float value, float inverse) {
  float q = std::nearbyint(value * inverse);
  if (!(q == q)) return 0;
  return int8_t(q > kInt8Levels ? kInt8Levels : (q < -kInt8Levels ? -kInt8Levels : q));
}

template <typename Load>
float quantizeRow(int64_t cols, int8_t* out, Load load) {
  float amax = 0.0f;
  for (int64_t k = 0; k < cols; ++k) amax = std::fmax(amax, std::fabs(load(k)));
  if (amax == 0.0f || !std::isfinite(amax)) {
    std::memset(out, 0, size_t(cols));
    return amax == 0.0f ? 0.0f : amax;
  }
  const float scale = amax / kInt8Levels;
  const float inverse = kInt8Levels / amax;
  for (int64_t k = 0; k < cols; ++k) out[k] = quantizeValue(load(k), inverse);
  return scale;
}

}  // namespace

float quantizeBf16RowInt8(const uint16_t* row, int64_t cols, int8_t* out) {
  return quantizeRow(cols, out, [row](int64_t k) { return bf16Value(row[k]); });
}

float quantizeF32RowInt8(const float* row, int64_t cols, int8_t* out) {
  return quantizeRow(cols, out, [row](int64_t k) { return row[k]; });
}

void quantizeActivationsU8(const float* x, int64_t ldx, int64_t m, int64_t cols, int64_t paddedCols, uint8_t* out,
                           float* scales) {
  parallelFor(m, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float* row = x + i * ldx;
      uint8_t* dst = out + i * paddedCols;
      __m512 amaxV = _mm512_setzero_ps();
      for (int64_t k = 0; k < cols; k += 16) {
        __m512 v = _mm512_maskz_loadu_ps(vec::firstLanes(cols - k), row + k);
        amaxV = _mm512_max_ps(amaxV, _mm512_abs_ps(v));
      }
      const float amax = vec::max(amaxV);
      const float inverse = amax > 0.0f ? kInt8Levels / amax : 0.0f;
      scales[i] = amax / kInt8Levels;
      const __m512 inv = _mm512_set1_ps(inverse);
      const __m512i zero = _mm512_set1_epi32(kActivationZeroPoint);
      for (int64_t k = 0; k < paddedCols; k += 16) {
        __m512 v = _mm512_maskz_loadu_ps(vec::firstLanes(cols - k), row + k);
        // Round to nearest even (the MXCSR default), shift by the zero point; |v * inverse| <= 127 by construction.
        __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v, inv)), zero);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + k), _mm512_cvtusepi32_epi8(q));
      }
    }
  });
}

}  // namespace phx
