// The operations a decoder layer calls, on the engine's types (row-major fp32 activations, packed weights, the
// step's layout, a layer's paged KV cache). Each forwards to a kernel (kernels/) and adds its time to the active
// OpProfile, so a step's time splits into matmuls and everything else (the engine's overhead).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "kernels/kv_cache.h"
#include "kernels/rope.h"
#include "worker/packed_matrix.h"
#include "worker/step_layout.h"

namespace phx::ops {

// y[m, w.rows] = x[m, w.cols] W^T, piece by piece (kernels/matmul.h picks the path from m)
void matmul(const float* x, int64_t m, const PackedMatrix& w, float* y);
// y[m, n] = x / rms(x) * weight, per row
void rmsNorm(const float* x, int64_t m, int64_t n, std::span<const float> weight, double eps, float* y);
// Rotate-half RoPE in place on the first `heads` heads of `headDim` in each of m rows (`stride` floats apart).
void rope(float* x, int64_t m, int64_t stride, int64_t heads, int64_t headDim, std::span<const int64_t> positions,
          const RopeTable& table);
// Writes the step's new K and V (rows `stride` floats apart) to their cache slots.
void storeKv(const float* k, const float* v, int64_t stride, const StepLayout& step, const PagedKv& cache);
// Causal GQA of the step's queries (rows `qStride` apart) over each sequence's cached context: out [m, qHeads *
// headDim]. Query head h reads local KV head kvHeadOf[h].
void attention(const float* q, int64_t qStride, std::span<const int32_t> kvHeadOf, int64_t headDim,
               const StepLayout& step, const PagedKv& cache, float* out);
// out[m, cols] = up * silu(gate) from gateUp [m, 2 * cols] = [gate | up]
void swiglu(const float* gateUp, int64_t m, int64_t cols, float* out);
// x += y, n elements
void addInPlace(float* x, const float* y, int64_t n);
// out[m, hidden]: rows of a BF16 table holding vocab rows [rowBegin, rowBegin + rowCount); ids outside give 0.
void embed(std::span<const uint16_t> table, int64_t rowBegin, int64_t rowCount, int64_t hidden,
           std::span<const int32_t> ids, float* out);

enum class Op { kEmbedding, kNorm, kMatmul, kRope, kKvStore, kAttention, kSwiglu, kResidual, kCount };
std::string_view opName(Op op);

struct OpProfile {
  std::array<double, size_t(Op::kCount)> seconds{};
  std::array<int64_t, size_t(Op::kCount)> calls{};

  double total() const;
  void add(const OpProfile& other);
};

// While alive, the ops called on this thread add their time to `profile`.
class ProfileScope {
 public:
  explicit ProfileScope(OpProfile& profile);
  ~ProfileScope();
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  OpProfile* previous_;
};

}  // namespace phx::ops
