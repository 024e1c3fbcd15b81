// The Phi-3 MLP activation: from gateUp [rows, 2 * inter] = [gate | up] (a rank's gate columns, then its up
// columns), out [rows, inter] = silu(gate) * up, silu(g) = g / (1 + e^-g), in fp32.
#pragma once

#include <cstdint>

namespace phx {

// gateUp rows are `gateUpStride` floats apart (>= 2 * inter), out rows `outStride` apart (>= inter).
void swiglu(const float* gateUp, int64_t rows, int64_t inter, int64_t gateUpStride, float* out, int64_t outStride);
inline void swiglu(const float* gateUp, int64_t rows, int64_t inter, float* out) {
  swiglu(gateUp, rows, inter, 2 * inter, out, inter);
}

}  // namespace phx
