#include "kernels/swiglu.h"

#include "kernels/kernel_check.h"
#include "kernels/simd.h"
#include "kernels/threading.h"
#include "kernels/vec_math.h"

namespace phx {

void swiglu(const float* gateUp, int64_t rows, int64_t inter, int64_t gateUpStride, float* out, int64_t outStride) {
  PHX_KERNEL_REQUIRE(rows >= 0 && inter > 0, "swiglu: bad shape: rows ", rows, ", inter ", inter);
  PHX_KERNEL_REQUIRE(gateUpStride >= 2 * inter && outStride >= inter, "swiglu: strides ", gateUpStride, " and ",
                     outStride, " too short for ", inter, " columns");
  PHX_KERNEL_REQUIRE(rows == 0 || (gateUp != nullptr && out != nullptr), "swiglu: null buffer");
  const __m512 one = _mm512_set1_ps(1.0f);
  parallelFor(rows, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* gate = gateUp + r * gateUpStride;
      const float* up = gate + inter;
      float* dst = out + r * outStride;
      for (int64_t c = 0; c < inter; c += 16) {
        __mmask16 mask = vec::firstLanes(inter - c);
        __m512 g = _mm512_maskz_loadu_ps(mask, gate + c);
        __m512 sigmoid = _mm512_div_ps(one, _mm512_add_ps(one, vec::exp(_mm512_sub_ps(_mm512_setzero_ps(), g))));
        _mm512_mask_storeu_ps(dst + c, mask,
                              _mm512_mul_ps(_mm512_mul_ps(g, sigmoid), _mm512_maskz_loadu_ps(mask, up + c)));
      }
    }
  });
}

}  // namespace phx
