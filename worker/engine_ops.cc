#include "worker/engine_ops.h"

#include <chrono>
#include <cmath>

#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/paged_attention.h"
#include "kernels/rms_norm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"

namespace phx::ops {
namespace {

thread_local OpProfile* activeProfile = nullptr;

// Adds the time from construction to destruction to the active profile's entry for `op`.
class Timed {
 public:
  explicit Timed(Op op) : op_(op), start_(activeProfile ? std::chrono::steady_clock::now() : Clock::time_point()) {}
  ~Timed() {
    if (activeProfile == nullptr) return;
    activeProfile->seconds[size_t(op_)] += std::chrono::duration<double>(Clock::now() - start_).count();
    ++activeProfile->calls[size_t(op_)];
  }

 private:
  using Clock = std::chrono::steady_clock;
  Op op_;
  Clock::time_point start_;
};

}  // namespace

void matmul(const float* x, int64_t m, const PackedMatrix& w, float* y) {
  Timed timed(Op::kMatmul);
  for (size_t p = 0; p < w.pieces.size(); ++p) {
    phx::matmul(x, w.cols, m, w.pieces[p], y + w.firstRow[p], w.rows);
  }
}

void rmsNorm(const float* x, int64_t m, int64_t n, std::span<const float> weight, double eps, float* y) {
  Timed timed(Op::kNorm);
  phx::rmsNorm(x, m, n, n, weight.data(), float(eps), y);
}

void rope(float* x, int64_t m, int64_t stride, int64_t heads, int64_t headDim, std::span<const int64_t> positions,
          const RopeTable& table) {
  Timed timed(Op::kRope);
  applyRope(x, m, stride, heads, headDim, positions.data(), table);
}

void storeKv(const float* k, const float* v, int64_t stride, const StepLayout& step, const PagedKv& cache) {
  Timed timed(Op::kKvStore);
  writeKv(k, v, stride, step.attention.data(), int64_t(step.attention.size()), cache);
}

void attention(const float* q, int64_t qStride, std::span<const int32_t> kvHeadOf, int64_t headDim,
               const StepLayout& step, const PagedKv& cache, float* out) {
  Timed timed(Op::kAttention);
  const int64_t qHeads = int64_t(kvHeadOf.size());
  const AttentionHeads heads{qHeads, headDim, kvHeadOf.data(), float(1.0 / std::sqrt(double(headDim)))};
  attendPaged(q, qStride, step.attention.data(), int64_t(step.attention.size()), heads, cache, out,
              qHeads * headDim);
}

void swiglu(const float* gateUp, int64_t m, int64_t cols, float* out) {
  Timed timed(Op::kSwiglu);
  phx::swiglu(gateUp, m, cols, out);
}

void addInPlace(float* x, const float* y, int64_t n) {
  Timed timed(Op::kResidual);
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void embed(std::span<const uint16_t> table, int64_t rowBegin, int64_t rowCount, int64_t hidden,
           std::span<const int32_t> ids, float* out) {
  Timed timed(Op::kEmbedding);
  embeddingLookup(table.data(), rowBegin, rowBegin + rowCount, hidden, ids.data(), int64_t(ids.size()), out);
}

std::string_view opName(Op op) {
  static constexpr std::string_view kNames[] = {"embedding", "rms_norm", "matmul",  "rope",
                                                "kv_store",  "attention", "swiglu", "residual"};
  return kNames[size_t(op)];
}

double OpProfile::total() const {
  double sum = 0;
  for (double s : seconds) sum += s;
  return sum;
}

void OpProfile::add(const OpProfile& other) {
  for (size_t i = 0; i < seconds.size(); ++i) {
    seconds[i] += other.seconds[i];
    calls[i] += other.calls[i];
  }
}

ProfileScope::ProfileScope(OpProfile& profile) : previous_(activeProfile) { activeProfile = &profile; }
ProfileScope::~ProfileScope() { activeProfile = previous_; }

}  // namespace phx::ops
