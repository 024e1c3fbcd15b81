// The per-token view of a step (rpc/step.h) that a worker's layers use: positions, KV cache slots and which
// tokens need logits, derived and validated once per step.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kv_cache.h"
#include "rpc/step.h"

namespace phx {

// The per-token view of a step that the layers use, derived once per step by layoutStep().
struct StepLayout {
  int64_t tokenCount = 0;
  std::vector<int64_t> positions;     // [tokens]: position of each new token in its sequence
  std::vector<int64_t> cacheSlots;    // [tokens]: block * B + offset where its K and V are written
  std::vector<int64_t> firstToken;    // [sequences + 1]: sequence s owns tokens [firstToken[s], firstToken[s + 1])
  std::vector<int64_t> logitTokens;   // token indices whose logits are computed, in batch order
  std::vector<int32_t> rowCandidates; // [logit rows]: candidates each row carries (0: dense logits)
  int64_t maxContext = 0;             // longest context in the step
  // Per sequence, what the attention kernel needs; block tables point into the StepBatch, which must outlive this.
  std::vector<AttentionSequence> attention;
};

struct StepLimits {
  int64_t vocabSize = 0;
  int64_t blockSize = 0;
  int64_t numBlocks = 0;
  int64_t maxPositions = 0;  // positions must stay below this (the model's context length)
  int64_t maxStepTokens = 0; // new tokens a step may carry (0: no limit beyond maxPositions per sequence)
};

// Validates the batch (token ids in the vocabulary, chunk lengths adding up, block tables covering each context
// with ids inside the pool) and derives its layout. Throws phx::Error (invalid argument) naming the sequence and
// field at fault.
StepLayout layoutStep(const StepBatch& batch, const StepLimits& limits);

}  // namespace phx
