#include "kernels/rms_norm.h"

#include <cmath>

#include "kernels/kernel_check.h"
#include "kernels/simd.h"
#include "kernels/threading.h"
#include "kernels/vec_math.h"

namespace phx {
namespace {

inline __m512 loadWeight(const uint16_t* w, __mmask16 mask) { return vec::maskLoadBf16(mask, w); }
inline __m512 loadWeight(const float* w, __mmask16 mask) { return _mm512_maskz_loadu_ps(mask, w); }

template <typename Weight>
void normRow(const float* x, int64_t n, const Weight* weight, float eps, float* y) {
  __m512 squares = _mm512_setzero_ps();
  for (int64_t c = 0; c < n; c += 16) {
    __m512 v = _mm512_maskz_loadu_ps(vec::firstLanes(n - c), x + c);
    squares = _mm512_fmadd_ps(v, v, squares);
  }
  float inverse = 1.0f / std::sqrt(vec::sum(squares) / float(n) + eps);
  __m512 scale = _mm512_set1_ps(inverse);
  for (int64_t c = 0; c < n; c += 16) {
    __mmask16 mask = vec::firstLanes(n - c);
    __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x + c), scale);
    _mm512_mask_storeu_ps(y + c, mask, _mm512_mul_ps(v, loadWeight(weight + c, mask)));
  }
}

template <typename Weight>
void rmsNormRows(const float* x, int64_t rows, int64_t n, int64_t stride, const Weight* weight, float eps, float* y) {
  PHX_KERNEL_REQUIRE(rows >= 0 && n > 0 && stride >= n, "rmsNorm: bad shape: rows ", rows, ", n ", n, ", stride ",
                     stride);
  PHX_KERNEL_REQUIRE(rows == 0 || (x != nullptr && y != nullptr && weight != nullptr), "rmsNorm: null buffer");
  PHX_KERNEL_REQUIRE(eps >= 0.0f, "rmsNorm: negative eps ", eps);
  parallelFor(rows, 4, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) normRow(x + r * stride, n, weight, eps, y + r * stride);
  });
}

}  // namespace

void rmsNorm(const float* x, int64_t rows, int64_t n, int64_t stride, const uint16_t* weightBf16, float eps,
             float* y) {
  rmsNormRows(x, rows, n, stride, weightBf16, eps, y);
}

void rmsNorm(const float* x, int64_t rows, int64_t n, int64_t stride, const float* weight, float eps, float* y) {
  rmsNormRows(x, rows, n, stride, weight, eps, y);
}

}  // namespace phx
