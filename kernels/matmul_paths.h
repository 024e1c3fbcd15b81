// The matmul paths behind kernels/matmul.h (internal to kernels/). Arguments are validated by matmul().
#pragma once

#include <cstdint>

#include "kernels/packed_weight.h"

namespace phx::matmul_detail {

inline constexpr int kDotTileRows = 6;          // rows of x per vdpbf16ps tile: 6 x 4 accumulators
inline constexpr int64_t kDotChunkPairs = 512;  // k pairs per weight chunk reused from L2: 512 x 256 B = 128 KiB
inline constexpr int kWidenTileRows = 4;        // rows per in-register-widening tile (decode in f32 mode)
inline constexpr int kFmaTileRows = 6;          // rows per f32 panel tile
inline constexpr int64_t kFmaChunkCols = 64;    // k per widened f32 chunk: 64 x 256 B = 16 KiB

// BF16 weight, activations rounded to BF16, vdpbf16ps.
void matmulBf16Dot(const float* x, int64_t ldx, int64_t m, const PackedWeight& w, float* y, int64_t ldy);
// BF16 or F32 weight, fp32 activations, f32 FMA.
void matmulF32Fma(const float* x, int64_t ldx, int64_t m, const PackedWeight& w, float* y, int64_t ldy);

// x rows [m, cols] fp32 (ldx apart) -> [m, paddedCols] BF16 bits (round to nearest even), zeros past cols.
void roundRowsToBf16(const float* x, int64_t ldx, int64_t m, int64_t cols, int64_t paddedCols, uint16_t* out);

// How many row-parts to split m into so that blocks x parts gives every thread work.
int64_t rowParts(int64_t blocks, int64_t m, int tileRows, int threads);

// Lane masks for the four 16-column groups of a 64-column block of which `validCols` are real.
struct BlockMasks {
  uint16_t group[4];
};
BlockMasks blockMasks(int64_t validCols);

}  // namespace phx::matmul_detail
