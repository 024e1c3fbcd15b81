// The INT8 weight paths behind kernels/matmul.h (per-output-channel symmetric weights, kernels/quantize.h):
//
//   W8A8 (kVnni): each step's activations quantized per token to u8 (zero point 128), vpdpbusd u8 x s8 into
//     int32, then y = float(acc - 128 * rowSum[n]) * scale[n] * xScale[m]. Integer sums are exact, so a row's
//     result is bit-identical whatever m, the tiling, the K chunking and the thread count.
//   weight-only (kWeightOnly): activations stay f32, s8 weights widened to f32 in registers, f32 FMA, times
//     scale[n] at the end. More accurate (no activation rounding), more instructions per weight byte.
//
// Which one runs is a process-wide choice, not a per-m one: the engine compares a mixed batch with each sequence
// alone, and a path chosen by m would change a sequence's logits with its batch-mates (docs/int8.md has the
// measurements behind the default).
#pragma once

#include <cstdint>

#include "kernels/packed_weight.h"

namespace phx {

enum class Int8Path { kVnni, kWeightOnly };

const char* int8PathName(Int8Path path);
// PHX_INT8_PATH=vnni|weightonly if set, else kVnni where the CPU has AVX512_VNNI, else kWeightOnly.
Int8Path int8Path();
// Overrides the choice (tests and benchmarks run both; kVnni needs AVX512_VNNI).
void setInt8Path(Int8Path path);

namespace matmul_detail {

inline constexpr int kVnniTileRows = 6;          // rows of x per vpdpbusd tile: 6 x 4 int32 accumulators
inline constexpr int64_t kVnniChunkQuads = 512;  // k quads per weight chunk walked by every tile: 64 x 2048 B
inline constexpr int kWidenInt8TileRows = 4;     // rows per weight-only tile

// Dispatches on int8Path(); arguments validated by matmul().
void matmulInt8(const float* x, int64_t ldx, int64_t m, const PackedWeight& w, float* y, int64_t ldy);
void matmulInt8Vnni(const float* x, int64_t ldx, int64_t m, const PackedWeight& w, float* y, int64_t ldy);
void matmulInt8WeightOnly(const float* x, int64_t ldx, int64_t m, const PackedWeight& w, float* y, int64_t ldy);

}  // namespace matmul_detail
}  // namespace phx
