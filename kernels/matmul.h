// y = x · Wᵀ for a packed weight: x [m, cols] fp32, y [m, rows] fp32. One entry point for every batch size and
// weight dtype; the path is chosen inside from m, the weight's type and the machine (docs/engine.md):
//
//   BF16 weight, compute kBf16Dot (CPUs whose vdpbf16ps is at least as fast as f32 FMA, e.g. AMD Zen 4):
//     activations rounded to BF16 once per call, vdpbf16ps over the packed pairs; m <= 6 streams each weight
//     block once over all of K (decode), larger m walks each block in 128 KiB K chunks kept in L2 for every
//     row tile, prefetching the next chunk while computing.
//   BF16 weight, compute kF32Fma (CPUs where BF16 arithmetic is slow, e.g. Intel without AMX):
//     weights widened to f32 in registers (m <= 4) or chunk by chunk into an L1 panel reused by all rows.
//   F32 weight: f32 FMA on the packed f32 panels.
//
// Within a compute mode, each output element is the same sequence of operations whatever m, the tiling and the
// thread count: results are bit-identical for a row computed alone or in a batch, on 1 or N threads.
#pragma once

#include <cstdint>

#include "kernels/cpu_identity.h"
#include "kernels/packed_weight.h"

namespace phx {

// How BF16 weights are multiplied in this process. Chosen once, never by timing: PHX_MATMUL_COMPUTE=bf16dot|f32fma
// if set, else the CPU table's choice (kernels/cpu_identity.h). A cluster's coordinator sets one compute for every
// worker (loadShard), so a tensor-parallel group never mixes them.
MatmulCompute matmulCompute();
// Overrides the choice (tests run both modes; kBf16Dot needs AVX512_BF16: throws std::invalid_argument without).
void setMatmulCompute(MatmulCompute compute);

// A short name of the path matmul takes for this m and weight (for benchmarks and logs).
const char* matmulPathName(int64_t m, const PackedWeight& w);

// x: [m, w.cols()] contiguous; y: [m, w.rows()] contiguous. m may be 0.
void matmul(const float* x, int64_t m, const PackedWeight& w, float* y);
// Strided: rows of x are ldx floats apart (ldx >= w.cols()), rows of y ldy apart (ldy >= w.rows()).
void matmul(const float* x, int64_t ldx, int64_t m, const PackedWeight& w, float* y, int64_t ldy);

}  // namespace phx
