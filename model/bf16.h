// bfloat16 <-> float. BF16 is the top half of an IEEE float; conversion to BF16 rounds to nearest even, like
// PyTorch's, and keeps NaN a NaN.
#pragma once

#include <bit>
#include <cstdint>

namespace phx {

inline float bf16ToFloat(uint16_t bits) { return std::bit_cast<float>(uint32_t(bits) << 16); }

inline uint16_t floatToBf16(float value) {
  uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

}  // namespace phx
