#include "worker/step_layout.h"

#include <algorithm>
#include <string>

#include "common/error.h"

namespace phx {
namespace {

// Each field alone first, so that no sum below can overflow: a hostile cachedTokens of INT64_MAX must be refused,
// not wrapped past the checks.
void checkSequence(const SequenceStep& sequence, size_t index, const StepLimits& limits) {
  const std::string where = "step: sequence " + std::to_string(index) + ": ";
  if (sequence.newTokens < 1 || sequence.newTokens > limits.maxPositions) {
    throwInvalidArgument(where + "newTokens must be in [1, " + std::to_string(limits.maxPositions) + "], got " +
                         std::to_string(sequence.newTokens));
  }
  if (sequence.cachedTokens < 0 || sequence.cachedTokens > limits.maxPositions - sequence.newTokens) {
    throwInvalidArgument(where + "cachedTokens " + std::to_string(sequence.cachedTokens) + " plus newTokens " +
                         std::to_string(sequence.newTokens) + " must stay within the model's " +
                         std::to_string(limits.maxPositions) + " positions (cachedTokens must not be negative)");
  }
  const int64_t blocksNeeded = (sequence.contextTokens() + limits.blockSize - 1) / limits.blockSize;
  if (int64_t(sequence.blockTable.size()) < blocksNeeded) {
    throwInvalidArgument(where + "block table has " + std::to_string(sequence.blockTable.size()) +
                         " blocks, a context of " + std::to_string(sequence.contextTokens()) + " tokens needs " +
                         std::to_string(blocksNeeded) + " of " + std::to_string(limits.blockSize) + " tokens");
  }
  if (sequence.candidates < 0) {
    throwInvalidArgument(where + "candidates must not be negative, got " + std::to_string(sequence.candidates));
  }
  for (int32_t block : sequence.blockTable) {
    if (block < 0 || block >= limits.numBlocks) {
      throwInvalidArgument(where + "block id " + std::to_string(block) + " is outside the KV pool [0, " +
                           std::to_string(limits.numBlocks) + ")");
    }
  }
}

// The totals, before anything is sized from them.
void checkTotals(const StepBatch& batch, const StepLimits& limits) {
  if (batch.sequences.empty()) throwInvalidArgument("step: the batch has no sequences");
  int64_t tokens = 0;
  for (size_t s = 0; s < batch.sequences.size(); ++s) {
    checkSequence(batch.sequences[s], s, limits);
    tokens += batch.sequences[s].newTokens;  // each at most maxPositions: no overflow for any list capnp can hold
  }
  if (tokens != int64_t(batch.tokens.size())) {
    throwInvalidArgument("step: the sequences' chunks add up to " + std::to_string(tokens) +
                         " tokens but the batch carries " + std::to_string(batch.tokens.size()));
  }
  if (limits.maxStepTokens > 0 && tokens > limits.maxStepTokens) {
    throwInvalidArgument("step: the batch carries " + std::to_string(tokens) + " tokens, more than the " +
                         std::to_string(limits.maxStepTokens) + " this worker was sized for");
  }
}

}  // namespace

StepLayout layoutStep(const StepBatch& batch, const StepLimits& limits) {
  checkTotals(batch, limits);
  StepLayout layout;
  layout.firstToken.push_back(0);
  for (size_t s = 0; s < batch.sequences.size(); ++s) {
    const SequenceStep& sequence = batch.sequences[s];
    const int64_t first = layout.firstToken.back();
    for (int64_t i = 0; i < sequence.newTokens; ++i) {
      const int64_t position = sequence.cachedTokens + i;
      layout.positions.push_back(position);
      layout.cacheSlots.push_back(int64_t(sequence.blockTable[position / limits.blockSize]) * limits.blockSize +
                                  position % limits.blockSize);
      const bool wanted = sequence.logits == LogitsFor::kAll ||
                          (sequence.logits == LogitsFor::kLast && i == sequence.newTokens - 1);
      if (wanted) {
        layout.logitTokens.push_back(first + i);
        layout.rowCandidates.push_back(batch.candidates > 0 ? std::max(batch.candidates, sequence.candidates) : 0);
      }
    }
    layout.firstToken.push_back(first + sequence.newTokens);
    layout.attention.push_back({first, sequence.newTokens, sequence.cachedTokens, sequence.blockTable.data(),
                                int64_t(sequence.blockTable.size())});
    layout.maxContext = std::max(layout.maxContext, sequence.contextTokens());
  }
  layout.tokenCount = layout.firstToken.back();
  for (size_t i = 0; i < batch.tokens.size(); ++i) {
    if (batch.tokens[i] < 0 || batch.tokens[i] >= limits.vocabSize) {
      throwInvalidArgument("step: token " + std::to_string(i) + " has id " + std::to_string(batch.tokens[i]) +
                           ", outside the vocabulary [0, " + std::to_string(limits.vocabSize) + ")");
    }
  }
  // Two new tokens writing one cache slot means two sequences were handed the same block: refuse rather than mix
  // their contexts.
  std::vector<int64_t> slots = layout.cacheSlots;
  std::sort(slots.begin(), slots.end());
  if (auto clash = std::adjacent_find(slots.begin(), slots.end()); clash != slots.end()) {
    throwInvalidArgument("step: two tokens write KV slot " + std::to_string(*clash) + " (block " +
                         std::to_string(*clash / limits.blockSize) + " is in two sequences' block tables)");
  }
  return layout;
}

}  // namespace phx
