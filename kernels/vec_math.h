// AVX-512 helpers shared by the kernels (internal to kernels/). GCC 12's plain forms of some intrinsics
// (_mm512_slli_epi32, the _mm512_reduce_* family) pass an "undefined" register that trips -Wuninitialized; the
// zero-masked forms used here compile to the same instructions.
#pragma once

#include <cstdint>

#include "kernels/simd.h"

namespace phx::vec {

// BF16 pairs (low element in bits 0..15) widened exactly to f32: the low element, then the high one.
inline __m512 widenLowBf16(__m512i pairs) {
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(__mmask16(0xffff), pairs, 16));
}
inline __m512 widenHighBf16(__m512i pairs) {
  return _mm512_castsi512_ps(_mm512_and_si512(pairs, _mm512_set1_epi32(int(0xffff0000u))));
}
// 16 consecutive BF16 values widened to f32.
inline __m512 loadBf16(const uint16_t* p) {
  __m512i wide =
      _mm512_maskz_cvtepu16_epi32(__mmask16(0xffff), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(__mmask16(0xffff), wide, 16));
}
inline __m512 maskLoadBf16(__mmask16 mask, const uint16_t* p) {
  __m512i wide = _mm512_maskz_cvtepu16_epi32(__mmask16(0xffff), _mm256_maskz_loadu_epi16(mask, p));
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(__mmask16(0xffff), wide, 16));
}

// Lanes [0, count) set, count in [0, 16].
inline __mmask16 firstLanes(int64_t count) {
  return count >= 16 ? __mmask16(0xffff) : __mmask16((1u << (count > 0 ? count : 0)) - 1);
}

// Horizontal sum and max in a fixed order (so results never depend on anything but the inputs).
inline float sum(__m512 v) {
  __m256 half = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_maskz_extractf32x8_ps(__mmask8(0xff), v, 1));
  __m128 quarter = _mm_add_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1));
  quarter = _mm_add_ps(quarter, _mm_movehl_ps(quarter, quarter));
  quarter = _mm_add_ss(quarter, _mm_movehdup_ps(quarter));
  return _mm_cvtss_f32(quarter);
}
inline float max(__m512 v) {
  __m256 half = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_maskz_extractf32x8_ps(__mmask8(0xff), v, 1));
  __m128 quarter = _mm_max_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1));
  quarter = _mm_max_ps(quarter, _mm_movehl_ps(quarter, quarter));
  quarter = _mm_max_ss(quarter, _mm_movehdup_ps(quarter));
  return _mm_cvtss_f32(quarter);
}

// e^x to about 2 ulp over the f32 range: x = n ln2 + r with |r| <= ln2 / 2, a degree-6 polynomial for e^r and
// vscalefps for the 2^n (which also gives 0 for very negative x, +inf for very positive x).
inline __m512 exp(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
  x = _mm512_min_ps(x, _mm512_set1_ps(89.0f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);  // ln2 split in two for accuracy
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

}  // namespace phx::vec
