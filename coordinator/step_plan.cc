#include "coordinator/step_plan.h"

#include <algorithm>

namespace phx {

StepPlan planStep(std::span<const PlannableSequence> sequences, int64_t maxBatchTokens, int32_t candidates,
                  uint64_t kvEpoch, int64_t maxPrefillTokens) {
  StepPlan plan;
  plan.batch.candidates = candidates;
  plan.batch.kvEpoch = kvEpoch;
  int64_t budget = maxBatchTokens;
  for (const bool decoding : {true, false}) {
    // Prompts get what the decodes left, up to their own budget: a step of fewer prompt tokens ends sooner, so the
    // first prompts' tokens (and every decoding sequence's next one) come sooner.
    if (!decoding && maxPrefillTokens > 0) budget = std::min(budget, maxPrefillTokens);
    for (size_t i = 0; i < sequences.size() && budget > 0; ++i) {
      const PlannableSequence& sequence = sequences[i];
      const int64_t pending = int64_t(sequence.tokens.size()) - sequence.computed;
      if (pending < 1 || (pending == 1) != decoding) continue;
      const int64_t chunk = std::min(pending, budget);
      budget -= chunk;
      const bool sampled = chunk == pending;
      const auto first = sequence.tokens.begin() + sequence.computed;
      plan.batch.tokens.insert(plan.batch.tokens.end(), first, first + chunk);
      plan.batch.sequences.push_back({sequence.computed, chunk, *sequence.blocks,
                                      sampled ? LogitsFor::kLast : LogitsFor::kNone, sequence.candidates});
      plan.chunks.push_back({i, chunk, sampled, decoding});
      (decoding ? plan.decodeTokens : plan.prefillTokens) += chunk;
    }
  }
  return plan;
}

}  // namespace phx
