// The vector instructions the kernels are written in: AVX-512 intrinsics, one source for two kernel tiers
// (internal to kernels/; kernels/CMakeLists.txt picks the tier, docs/engine.md says which CPUs get which):
//
//   avx512: <immintrin.h>, the real instructions (F/BW/VL/DQ, with BF16 and VNNI used only where cpuFeatures()
//           finds them).
//   avx2:   the same intrinsics from SIMDe (Debian's libsimde-dev), which implements each with AVX2 and FMA on a
//           CPU without AVX-512: correct and bit-identical from run to run, at roughly half the speed. The few
//           intrinsics SIMDe 0.7.4 lacks are below, lane by lane, reading and writing only the lanes their mask
//           selects (as the real masked instructions do), so no kernel reads past the end of a buffer.
#pragma once

#ifndef PHX_KERNELS_SIMDE
#define PHX_KERNELS_SIMDE 0  // kernels/CMakeLists.txt sets 1 for the avx2 tier
#endif

#if PHX_KERNELS_SIMDE

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include <cmath>
#include <cstdint>
#include <cstring>

namespace phx::simd_shim {

template <typename Lanes, typename Vector>
inline Lanes lanesOf(const Vector& v) {
  static_assert(sizeof(Lanes) == sizeof(Vector));
  Lanes lanes;
  std::memcpy(&lanes, &v, sizeof(v));
  return lanes;
}
template <typename Vector, typename Lanes>
inline Vector vectorOf(const Lanes& lanes) {
  static_assert(sizeof(Lanes) == sizeof(Vector));
  Vector v;
  std::memcpy(&v, &lanes, sizeof(v));
  return v;
}
template <typename T, int N>
struct Lanes {
  T lane[N];
};

}  // namespace phx::simd_shim

inline __m512 phx_simde_mm512_maskz_loadu_ps(__mmask16 mask, const void* p) {
  phx::simd_shim::Lanes<float, 16> out{};
  for (int i = 0; i < 16; ++i) {
    if (mask >> i & 1) std::memcpy(&out.lane[i], static_cast<const float*>(p) + i, 4);
  }
  return phx::simd_shim::vectorOf<__m512>(out);
}
inline void phx_simde_mm512_mask_storeu_ps(void* p, __mmask16 mask, __m512 v) {
  const auto in = phx::simd_shim::lanesOf<phx::simd_shim::Lanes<float, 16>>(v);
  for (int i = 0; i < 16; ++i) {
    if (mask >> i & 1) std::memcpy(static_cast<float*>(p) + i, &in.lane[i], 4);
  }
}
inline __m256i phx_simde_mm256_maskz_loadu_epi16(__mmask16 mask, const void* p) {
  phx::simd_shim::Lanes<uint16_t, 16> out{};
  for (int i = 0; i < 16; ++i) {
    if (mask >> i & 1) std::memcpy(&out.lane[i], static_cast<const uint16_t*>(p) + i, 2);
  }
  return phx::simd_shim::vectorOf<__m256i>(out);
}
inline void phx_simde_mm512_mask_storeu_epi16(void* p, __mmask32 mask, __m512i v) {
  const auto in = phx::simd_shim::lanesOf<phx::simd_shim::Lanes<uint16_t, 32>>(v);
  for (int i = 0; i < 32; ++i) {
    if (mask >> i & 1) std::memcpy(static_cast<uint16_t*>(p) + i, &in.lane[i], 2);
  }
}
inline __m128i phx_simde_mm_maskz_loadu_epi8(__mmask16 mask, const void* p) {
  phx::simd_shim::Lanes<int8_t, 16> out{};
  for (int i = 0; i < 16; ++i) {
    if (mask >> i & 1) out.lane[i] = static_cast<const int8_t*>(p)[i];
  }
  return phx::simd_shim::vectorOf<__m128i>(out);
}

// Lane i of the result is f(lane i of v), for the conversions SIMDe 0.7.4 lacks.
template <typename To, typename ToLane, typename FromLane, int N, typename From, typename F>
inline To mapLanes(const From& v, F f) {
  const auto in = phx::simd_shim::lanesOf<phx::simd_shim::Lanes<FromLane, N>>(v);
  phx::simd_shim::Lanes<ToLane, N> out;
  for (int i = 0; i < N; ++i) out.lane[i] = f(in.lane[i]);
  return phx::simd_shim::vectorOf<To>(out);
}
// f32 -> BF16 bits, rounded to nearest even (NaN kept quiet), as vcvtne2ps2bf16 rounds.
inline uint16_t phx_simde_bf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
  return uint16_t((bits + 0x7fffu + ((bits >> 16) & 1)) >> 16);
}

inline __m512i phx_simde_mm512_maskz_slli_epi32(__mmask16 mask, __m512i v, unsigned shift) {
  return simde_mm512_maskz_mov_epi32(mask, simde_mm512_slli_epi32(v, shift));
}
inline __m512i phx_simde_mm512_maskz_cvtepu16_epi32(__mmask16 mask, __m256i v) {
  return simde_mm512_maskz_mov_epi32(mask, mapLanes<__m512i, int32_t, uint16_t, 16>(v, [](uint16_t x) {
    return int32_t(x);
  }));
}
inline __m512i phx_simde_mm512_cvtepi8_epi32(__m128i v) {
  return mapLanes<__m512i, int32_t, int8_t, 16>(v, [](int8_t x) { return int32_t(x); });
}
inline __m512 phx_simde_mm512_cvtepi32_ps(__m512i v) {
  return mapLanes<__m512, float, int32_t, 16>(v, [](int32_t x) { return float(x); });
}
inline __m512i phx_simde_mm512_cvtps_epi32(__m512 v) {  // nearest even, as the default MXCSR rounds
  return mapLanes<__m512i, int32_t, float, 16>(v, [](float x) { return int32_t(std::nearbyint(x)); });
}
inline __m128i phx_simde_mm512_cvtusepi32_epi8(__m512i v) {  // unsigned saturation
  return mapLanes<__m128i, uint8_t, uint32_t, 16>(v, [](uint32_t x) { return uint8_t(x > 255u ? 255u : x); });
}
inline __m256 phx_simde_mm512_maskz_extractf32x8_ps(__mmask8 mask, __m512 v, int half) {
  auto lanes = phx::simd_shim::lanesOf<phx::simd_shim::Lanes<float, 16>>(v);
  phx::simd_shim::Lanes<float, 8> out;
  for (int i = 0; i < 8; ++i) out.lane[i] = (mask >> i & 1) ? lanes.lane[8 * half + i] : 0.0f;
  return phx::simd_shim::vectorOf<__m256>(out);
}
inline __m512bh phx_simde_mm512_cvtne2ps_pbh(__m512 high, __m512 low) {  // low's 16 lanes first, then high's
  const auto a = phx::simd_shim::lanesOf<phx::simd_shim::Lanes<float, 16>>(low);
  const auto b = phx::simd_shim::lanesOf<phx::simd_shim::Lanes<float, 16>>(high);
  phx::simd_shim::Lanes<uint16_t, 32> out;
  for (int i = 0; i < 16; ++i) {
    out.lane[i] = phx_simde_bf16(a.lane[i]);
    out.lane[16 + i] = phx_simde_bf16(b.lane[i]);
  }
  return phx::simd_shim::vectorOf<__m512bh>(out);
}

// GCC's <immintrin.h>, which SIMDe includes, declares the real ones for AVX-512 targets only: the kernels' calls
// come here instead.
#define _mm512_maskz_loadu_ps phx_simde_mm512_maskz_loadu_ps
#define _mm512_mask_storeu_ps phx_simde_mm512_mask_storeu_ps
#define _mm256_maskz_loadu_epi16 phx_simde_mm256_maskz_loadu_epi16
#define _mm512_mask_storeu_epi16 phx_simde_mm512_mask_storeu_epi16
#define _mm_maskz_loadu_epi8 phx_simde_mm_maskz_loadu_epi8
#define _mm512_maskz_slli_epi32 phx_simde_mm512_maskz_slli_epi32
#define _mm512_maskz_cvtepu16_epi32 phx_simde_mm512_maskz_cvtepu16_epi32
#define _mm512_cvtepi8_epi32 phx_simde_mm512_cvtepi8_epi32
#define _mm512_cvtepi32_ps phx_simde_mm512_cvtepi32_ps
#define _mm512_cvtps_epi32 phx_simde_mm512_cvtps_epi32
#define _mm512_cvtusepi32_epi8 phx_simde_mm512_cvtusepi32_epi8
#define _mm512_maskz_extractf32x8_ps phx_simde_mm512_maskz_extractf32x8_ps
#define _mm512_cvtne2ps_pbh phx_simde_mm512_cvtne2ps_pbh

#else

#include <immintrin.h>

#endif
