// Shared helpers for the kernel tests: seeded random data, BF16 conversion and NMSE. Written here, independently
// of kernels/, so the references and the kernels share no code.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "tests/common/numeric.h"

namespace phx::testing {

inline float bf16BitsToFloat(uint16_t bits) {
  uint32_t wide = uint32_t(bits) << 16;
  float value;
  std::memcpy(&value, &wide, sizeof value);
  return value;
}

// Round to nearest even (finite inputs only; the tests draw finite values).
inline uint16_t floatToBf16Bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

inline float roundToBf16(float value) { return bf16BitsToFloat(floatToBf16Bits(value)); }

inline std::vector<float> randomFloats(size_t count, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> values(count);
  for (float& v : values) v = normal(rng);
  return values;
}

inline std::vector<uint16_t> randomBf16(size_t count, uint64_t seed, float scale = 1.0f) {
  std::vector<float> values = randomFloats(count, seed, scale);
  std::vector<uint16_t> bits(count);
  for (size_t i = 0; i < count; ++i) bits[i] = floatToBf16Bits(values[i]);
  return bits;
}

inline bool bitIdentical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace phx::testing
