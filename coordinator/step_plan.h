// What one scheduler step computes, decided before anything runs (vLLM's SchedulerOutput): which running
// sequences take part, which of their tokens each computes, over which KV blocks, and which rows are sampled.
// planStep is a pure function of the running sequences, so the batching policy is testable without an engine:
// one token per decoding sequence first, then prompt chunks, in admission order, under a token budget.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "coordinator/block_allocator.h"
#include "rpc/step.h"

namespace phx {

// A running sequence as the planner sees it: its tokens (prompt, then generated), how many are in the KV cache,
// the blocks that hold (or will hold) them, and the candidates its own sampling asks for.
struct PlannableSequence {
  std::span<const int32_t> tokens;
  int64_t computed = 0;
  const BlockTable* blocks = nullptr;
  int32_t candidates = 0;  // more logit candidates than the batch's (top_k or top_logprobs above it); 0: none
};

// One sequence's part of the step.
struct PlannedChunk {
  size_t sequence = 0;   // index into the planner's input
  int64_t tokens = 0;    // computed this step, from its `computed`
  bool sampled = false;  // the chunk reaches the sequence's last token: its logits give the next token
  bool decode = false;   // one pending token (a generated one), rather than a prompt chunk
};

struct StepPlan {
  std::vector<PlannedChunk> chunks;  // batch order: decode tokens first, then prompt chunks
  StepBatch batch;
  int64_t decodeTokens = 0;
  int64_t prefillTokens = 0;

  bool empty() const { return chunks.empty(); }
};

// The step for these sequences under `maxBatchTokens`, of which prompt chunks take at most `maxPrefillTokens` (0:
// the whole budget), each logit row with `candidates` candidates (0: dense logits), planned against the executor's
// `kvEpoch`.
StepPlan planStep(std::span<const PlannableSequence> sequences, int64_t maxBatchTokens, int32_t candidates,
                  uint64_t kvEpoch, int64_t maxPrefillTokens = 0);

}  // namespace phx
