// Merging the logit candidates of a row's vocab slices (one per last-stage tensor rank) into the row's candidates
// over the whole vocabulary: the union, re-sorted, the `count` most likely kept, and the total log-sum-exp
// log(sum_i exp(lse_i)), so logit - logSumExp stays each token's exact log-probability.
#pragma once

#include <cstdint>
#include <span>

#include "rpc/step.h"

namespace phx {

LogitCandidates mergeLogitCandidates(std::span<const LogitCandidates* const> slices, int32_t count);

}  // namespace phx
