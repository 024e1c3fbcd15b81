#include "worker/logit_candidates.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace phx {

LogitCandidates topLogitCandidates(std::span<const float> row, int64_t vocabBegin, int32_t count) {
  LogitCandidates result;
  if (row.empty()) {
    result.logSumExp = -INFINITY;  // an empty slice holds no probability mass
    return result;
  }
  const size_t kept = std::min(size_t(std::max(count, 0)), row.size());
  std::vector<int32_t> order(row.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + ptrdiff_t(kept), order.end(), [&](int32_t a, int32_t b) {
    return row[size_t(a)] > row[size_t(b)] || (row[size_t(a)] == row[size_t(b)] && a < b);
  });
  result.ids.reserve(kept);
  result.logits.reserve(kept);
  for (size_t i = 0; i < kept; ++i) {
    result.ids.push_back(int32_t(vocabBegin + order[i]));
    result.logits.push_back(row[size_t(order[i])]);
  }
  // The maximum is the first candidate when there is one; otherwise scan for it.
  const float maxLogit = kept > 0 ? result.logits.front() : *std::max_element(row.begin(), row.end());
  double sum = 0.0;
  for (float l : row) sum += std::exp(double(l) - maxLogit);
  result.logSumExp = float(maxLogit + std::log(sum));
  return result;
}

}  // namespace phx
