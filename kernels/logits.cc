#include "kernels/logits.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/kernel_check.h"
#include "kernels/simd.h"
#include "kernels/vec_math.h"

namespace phx {
namespace {

// Orders candidates: higher value first, then lower id; NaN lowest.
bool ranksBefore(const TokenScore& a, const TokenScore& b) {
  float av = std::isnan(a.value) ? -std::numeric_limits<float>::infinity() : a.value;
  float bv = std::isnan(b.value) ? -std::numeric_limits<float>::infinity() : b.value;
  if (av != bv) return av > bv;
  if (std::isnan(a.value) != std::isnan(b.value)) return !std::isnan(a.value);
  return a.id < b.id;
}

float maxOf(const float* x, int64_t n) {
  __m512 peak = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 mask = vec::firstLanes(n - i);
    peak = _mm512_mask_max_ps(peak, mask, peak, _mm512_maskz_loadu_ps(mask, x + i));
  }
  return vec::max(peak);
}

}  // namespace

float logSumExp(const float* logits, int64_t n) {
  PHX_KERNEL_REQUIRE(n >= 1 && logits != nullptr, "logSumExp: need at least one logit, got ", n);
  float peak = maxOf(logits, n);
  if (std::isinf(peak)) return peak;  // all -inf (or a +inf): the sum is that
  __m512 offset = _mm512_set1_ps(peak);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 mask = vec::firstLanes(n - i);
    __m512 shifted = _mm512_sub_ps(_mm512_maskz_loadu_ps(mask, logits + i), offset);
    sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(mask, vec::exp(shifted)));
  }
  return peak + std::log(vec::sum(sum));
}

void logSoftmax(const float* logits, int64_t n, float* out) {
  PHX_KERNEL_REQUIRE(out != nullptr, "logSoftmax: null output");
  float total = logSumExp(logits, n);
  for (int64_t i = 0; i < n; ++i) out[i] = logits[i] - total;
}

std::vector<TokenScore> topK(const float* logits, int64_t n, int64_t k, int64_t idOffset) {
  PHX_KERNEL_REQUIRE(n >= 0 && k >= 0 && (n == 0 || logits != nullptr), "topK: bad arguments n ", n, ", k ", k);
  PHX_KERNEL_REQUIRE(idOffset >= 0 && idOffset + n <= std::numeric_limits<int32_t>::max(), "topK: ids [", idOffset,
                     ", ", idOffset + n, ") do not fit int32");
  int64_t keep = std::min(k, n);
  std::vector<TokenScore> best;
  if (keep == 0) return best;
  best.reserve(size_t(keep) + 1);
  // A heap of the best `keep` seen so far, worst on top: one comparison per logit once it is full.
  for (int64_t i = 0; i < n; ++i) {
    TokenScore candidate{int32_t(idOffset + i), logits[i]};
    if (int64_t(best.size()) < keep) {
      best.push_back(candidate);
      std::push_heap(best.begin(), best.end(), ranksBefore);
    } else if (ranksBefore(candidate, best.front())) {
      std::pop_heap(best.begin(), best.end(), ranksBefore);
      best.back() = candidate;
      std::push_heap(best.begin(), best.end(), ranksBefore);
    }
  }
  std::sort(best.begin(), best.end(), ranksBefore);
  return best;
}

SliceTopK sliceTopK(const float* logits, int64_t n, int64_t k, int64_t idOffset) {
  return {topK(logits, n, k, idOffset), logSumExp(logits, n)};
}

SliceTopK mergeSliceTopK(std::span<const SliceTopK> slices, int64_t k) {
  PHX_KERNEL_REQUIRE(!slices.empty() && k >= 0, "mergeSliceTopK: need at least one slice and k >= 0");
  SliceTopK merged;
  float peak = -std::numeric_limits<float>::infinity();
  for (const SliceTopK& slice : slices) {
    peak = std::max(peak, slice.logSumExp);
    merged.top.insert(merged.top.end(), slice.top.begin(), slice.top.end());
  }
  double sum = 0;
  for (const SliceTopK& slice : slices) sum += std::exp(double(slice.logSumExp) - double(peak));
  merged.logSumExp = std::isinf(peak) ? peak : float(double(peak) + std::log(sum));
  std::sort(merged.top.begin(), merged.top.end(), ranksBefore);
  if (int64_t(merged.top.size()) > k) merged.top.resize(size_t(k));
  return merged;
}

}  // namespace phx
