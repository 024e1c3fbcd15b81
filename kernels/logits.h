// Helpers over rows of logits: log-sum-exp, log-softmax, top-k, and the per-slice summary a vocabulary-parallel
// rank returns (its top-k and its log-sum-exp) with the exact merge a coordinator applies to the slices.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace phx {

struct TokenScore {
  int32_t id = 0;
  float value = 0;  // a logit (or a logprob, where a function says so)
};

// log(sum_i e^logits[i]), max-subtracted. n >= 1.
float logSumExp(const float* logits, int64_t n);
// out[i] = logits[i] - logSumExp(logits); out may alias logits.
void logSoftmax(const float* logits, int64_t n, float* out);

// The min(k, n) largest logits, largest first; ties go to the lower id; NaN ranks below everything. Ids are
// idOffset + index (the slice's first vocabulary row).
std::vector<TokenScore> topK(const float* logits, int64_t n, int64_t k, int64_t idOffset = 0);

// What a rank holding vocabulary rows [idOffset, idOffset + n) reports for one row of logits.
struct SliceTopK {
  std::vector<TokenScore> top;  // logits, largest first
  float logSumExp = 0;          // of the slice's logits
};
SliceTopK sliceTopK(const float* logits, int64_t n, int64_t k, int64_t idOffset);

// The full row's top k and log-sum-exp from its slices: the same as sliceTopK over the whole row (up to the
// rounding of the log-sum-exp combination). A token's logprob is then value - logSumExp.
SliceTopK mergeSliceTopK(std::span<const SliceTopK> slices, int64_t k);

}  // namespace phx
