// RMSNorm as Phi-3 computes it, in fp32: y = x / sqrt(mean(x^2) + eps) * weight, per row.
#pragma once

#include <cstdint>

namespace phx {

// x, y: [rows, n] with rows `stride` floats apart (y may alias x); weight: [n] as BF16 bits or f32.
void rmsNorm(const float* x, int64_t rows, int64_t n, int64_t stride, const uint16_t* weightBf16, float eps,
             float* y);
void rmsNorm(const float* x, int64_t rows, int64_t n, int64_t stride, const float* weight, float eps, float* y);

}  // namespace phx
