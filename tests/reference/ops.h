// The reference's operations, written straight from the Hugging Face Phi-3 modelling code with plain loops:
// no SIMD intrinsics, no oneDNN, nothing shared with kernels/. Reductions that are cheap (norms, softmax) run in
// double; matrix products accumulate in fp32, as the task allows, with OpenMP over output rows.
#pragma once

#include <cstdint>
#include <span>

#include "tests/reference/safetensors_reader.h"

namespace phx::reference {

// Phi3RMSNorm: y = x / sqrt(mean(x^2) + eps) * weight. x, weight, y: [n].
void rmsNorm(std::span<const float> x, std::span<const float> weight, double eps, std::span<float> y);

// Root mean square of x: the activation-size figure the norm report prints.
double rms(std::span<const float> x);

// In place, numerically stable (subtracts the maximum first).
void softmaxInPlace(std::span<float> values);

// silu(x) = x * sigmoid(x)
float silu(float x);

// Rotate-half RoPE on one head vector [headDim] at `position`, over all head dims (Phi-4 has no partial rotary):
// inv_freq[i] = theta^(-2i/headDim) for i < headDim/2, angle = position * inv_freq[i] (double),
// head' = head * cos + rotate_half(head) * sin with rotate_half([x1, x2]) = [-x2, x1] (x1, x2 the two halves).
void applyRope(std::span<float> head, int64_t position, double theta);

struct AttentionShape {
  int64_t tokens = 0;
  int64_t numHeads = 0;
  int64_t numKvHeads = 0;
  int64_t headDim = 0;
};

// Causal grouped-query attention over one sequence (positions 0..tokens-1). Query head h reads KV head
// h / (numHeads / numKvHeads); scores are scaled by 1/sqrt(headDim).
// q: [tokens, numHeads*headDim]; k, v: [tokens, numKvHeads*headDim]; out: [tokens, numHeads*headDim].
void causalAttention(const AttentionShape& shape, const float* q, const float* k, const float* v, float* out);

// A linear layer without bias: y = x W^T. x: [tokens, in]; w: [out, in]; y: [tokens, out].
void linear(const float* x, int64_t tokens, const StoredTensor& w, float* y);

}  // namespace phx::reference
