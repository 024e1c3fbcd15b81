#include "coordinator/cluster_candidates.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace phx {

LogitCandidates mergeLogitCandidates(std::span<const LogitCandidates* const> slices, int32_t count) {
  struct Entry {
    int32_t id;
    float logit;
  };
  std::vector<Entry> all;
  float maxLse = -INFINITY;
  for (const LogitCandidates* slice : slices) {
    for (size_t i = 0; i < slice->ids.size(); ++i) all.push_back({slice->ids[i], slice->logits[i]});
    maxLse = std::max(maxLse, slice->logSumExp);
  }
  const size_t kept = std::min(all.size(), size_t(std::max(count, 0)));
  // The same order as a single rank's (rpc/step.h): most likely first, ties to the lower id.
  std::partial_sort(all.begin(), all.begin() + ptrdiff_t(kept), all.end(), [](const Entry& a, const Entry& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  });
  LogitCandidates merged;
  merged.ids.reserve(kept);
  merged.logits.reserve(kept);
  for (size_t i = 0; i < kept; ++i) {
    merged.ids.push_back(all[i].id);
    merged.logits.push_back(all[i].logit);
  }
  if (std::isinf(maxLse)) {
    merged.logSumExp = maxLse;
    return merged;
  }
  double sum = 0.0;
  for (const LogitCandidates* slice : slices) sum += std::exp(double(slice->logSumExp) - maxLse);
  merged.logSumExp = float(maxLse + std::log(sum));
  return merged;
}

}  // namespace phx
