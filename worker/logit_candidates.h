// A logit row reduced to its most likely tokens (rpc/step.h LogitCandidates): what a rank returns instead of its
// dense vocab slice when the step asks for candidates.
#pragma once

#include <cstdint>
#include <span>

#include "rpc/step.h"

namespace phx {

// The `count` largest logits of `row` (a slice starting at vocabulary id `vocabBegin`), most likely first, ties to
// the lower id, and the log-sum-exp of the whole row. count is clamped to the row's length.
LogitCandidates topLogitCandidates(std::span<const float> row, int64_t vocabBegin, int32_t count);

}  // namespace phx
