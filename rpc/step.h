// One model step as plain data, the message a coordinator sends to every worker: a batch of sequences, each
// appending a chunk of new tokens (a prompt chunk, or one token when decoding) after the tokens already in its KV
// cache. Sequences at different positions, prefilling and decoding, share one step: what continuous batching
// needs. StepExecutor is what runs a step, in this process (worker/model_runner.h) or across a cluster.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace phx {

// Which of a sequence's new tokens need logits.
enum class LogitsFor { kNone, kLast, kAll };

struct SequenceStep {
  int64_t cachedTokens = 0;  // tokens already in the KV cache: the position of the first new token
  int64_t newTokens = 0;     // this step's chunk, >= 1
  // KV block ids holding positions [0, cachedTokens + newTokens): block i holds positions [i * B, (i + 1) * B)
  // for the cache's block size B. Owned by the caller (the coordinator's block allocator).
  std::vector<int32_t> blockTable;
  LogitsFor logits = LogitsFor::kLast;

  int64_t contextTokens() const { return cachedTokens + newTokens; }
};

struct StepBatch {
  std::vector<int32_t> tokens;  // [total new tokens]: each sequence's chunk in turn
  std::vector<SequenceStep> sequences;
};

// Logits for the step's logit tokens (StepLayout::logitTokens order): a slice of the vocabulary, all of it on a
// single rank.
struct StepOutput {
  int64_t vocabBegin = 0;
  int64_t vocabCount = 0;
  int64_t rows = 0;
  std::vector<float> logits;  // [rows, vocabCount]

  std::span<const float> row(int64_t r) const {
    return std::span<const float>(logits).subspan(size_t(r * vocabCount), size_t(vocabCount));
  }
};

class StepExecutor {
 public:
  virtual ~StepExecutor() = default;
  // The KV pool the block tables index: its block size in tokens and its number of blocks.
  virtual int64_t kvBlockSize() const = 0;
  virtual int64_t kvBlockCount() const = 0;
  // Runs one step; the output stays valid until the next call. Throws phx::Error (invalid argument) for a
  // malformed batch.
  virtual const StepOutput& run(const StepBatch& batch) = 0;
};

}  // namespace phx
