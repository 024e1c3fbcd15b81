// Symmetric INT8 quantization, shared by the INT8 weights, the W8A8 matmul's activations and the INT8 KV cache.
// Every function is plain, deterministic scalar or AVX-512 code: quantizing the same values always gives the same
// bytes, so a checkpoint quantized by `phalanx quantize` equals one quantized while loading.
//
//   weights, KV vectors:  scale = max|v| / 127, q = round(v * (127 / max|v|)) in [-127, 127] (all-zero: scale 0)
//   activations (W8A8):   scale = max|x| / 127, q = round(x * (127 / max|x|)) + 128 in [1, 255] (zero point 128:
//                         VNNI's vpdpbusd multiplies u8 by s8; the 128 * sum_k w[n, k] it adds is subtracted
//                         with the weight's precomputed row sums)
#pragma once

#include <cstdint>

namespace phx {

inline constexpr float kInt8Levels = 127.0f;
inline constexpr int kActivationZeroPoint = 128;

// One row of BF16 bit patterns -> `cols` int8 values; returns the row's scale.
float quantizeBf16RowInt8(const uint16_t* row, int64_t cols, int8_t* out);
// The same from f32 values (KV vectors, tests).
float quantizeF32RowInt8(const float* row, int64_t cols, int8_t* out);

// Per-token activations for the W8A8 matmul: x rows [m, cols] (ldx apart) -> out [m, paddedCols] u8 (the zero
// point past cols, so padding contributes 128 * 0-weight = 0), scales [m].
void quantizeActivationsU8(const float* x, int64_t ldx, int64_t m, int64_t cols, int64_t paddedCols, uint8_t* out,
                           float* scales);

}  // namespace phx
