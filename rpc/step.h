// One model step as plain data, the message a coordinator sends to every worker: a batch of sequences, each
// appending a chunk of new tokens (a prompt chunk, or one token when decoding) after the tokens already in its KV
// cache. Sequences at different positions, prefilling and decoding, share one step: what continuous batching
// needs. StepExecutor is what runs a step, in this process (worker/model_runner.h) or across a cluster.
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <utility>
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
  // More candidates for this sequence's logit rows than the batch's (a request's top_k or top_logprobs above it);
  // 0: the batch's. Only the rows that ask are widened, not every row of the batch.
  int32_t candidates = 0;

  int64_t contextTokens() const { return cachedTokens + newTokens; }
  // The logit rows this sequence asks for.
  int64_t logitRows() const { return logits == LogitsFor::kAll ? newTokens : logits == LogitsFor::kLast ? 1 : 0; }
};

// How many candidates a logit row carries when the caller does not say: enough that top-k/top-p/min-p sampling at
// the usual settings never wants a token outside them (top-p 0.95 over a chat model's distribution keeps tens of
// tokens; OpenAI caps top_logprobs at 20), while a row shrinks from the vocabulary (100,352 floats, 400 KB) to 1 KB
// per rank, which keeps a cluster's step reply small however many vocab slices there are.
constexpr int32_t kDefaultCandidates = 128;

struct StepBatch {
  std::vector<int32_t> tokens;  // [total new tokens]: each sequence's chunk in turn
  std::vector<SequenceStep> sequences;
  // 0: dense logits of the vocab slice per logit row. K > 0: instead each logit row's K most likely tokens of the
  // slice with their logits, and the log-sum-exp over the whole slice (StepOutput::candidates).
  int32_t candidates = 0;
  // Not sent to workers: the executor's kvEpoch() the block tables were planned against. A cluster refuses the
  // batch (kDisconnected) when its epoch has moved on since, so a step never reads KV a restart has lost.
  // 0: not checked.
  uint64_t kvEpoch = 0;
};

// One logit row reduced to its most likely tokens: ids are vocabulary ids (not slice offsets), most likely first
// (ties: lower id first); logSumExp is over every logit of the slice the row came from, so logit - logSumExp is the
// exact log-probability of a token under that slice (under the whole vocabulary once the slices are merged).
struct LogitCandidates {
  std::vector<int32_t> ids;
  std::vector<float> logits;
  float logSumExp = 0;
};

// Logits for the step's logit tokens (StepLayout::logitTokens order): a slice of the vocabulary, all of it on a
// single rank.
struct StepOutput {
  int64_t vocabBegin = 0;
  int64_t vocabCount = 0;
  int64_t rows = 0;
  std::vector<float> logits;  // [rows, vocabCount]; empty when the batch asked for candidates
  std::vector<LogitCandidates> candidates;  // [rows] when the batch asked for candidates, else empty

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
  // malformed batch; kDisconnected when part of the executor went away (a cluster worker), in which case the KV
  // of every sequence may be lost and kvEpoch() moves on once the executor is back.
  virtual const StepOutput& run(const StepBatch& batch) = 0;

  // Pipelining: an executor whose steps walk pipeline stages can hold several steps at once, each over sequences
  // of its own, so that every stage works while the others do (vLLM's virtual engines). launch() starts a step and
  // returns; collect() waits for the oldest step launched and not yet collected and returns its output (valid until
  // the next collect or run), throwing as run() does. At most maxStepsInFlight() steps are launched and not
  // collected; a launched batch must stay alive until its collect(). Executors of one stage run one step at a time.
  virtual int maxStepsInFlight() const { return 1; }
  virtual void launch(const StepBatch& batch);
  virtual const StepOutput& collect();
  // False while the executor recovers from a fault (steps would fail with kDisconnected).
  virtual bool ready() const { return true; }
  // Changes whenever the KV pool may have lost contents (a cluster worker restarted or rejoined): every block's
  // keys and values from before are then untrustworthy, prefix cache included.
  virtual uint64_t kvEpoch() const { return 0; }

 private:
  const StepBatch* launched_ = nullptr;  // the default launch(): run at collect()
};

inline void StepExecutor::launch(const StepBatch& batch) {
  if (launched_ != nullptr) throw std::logic_error("this executor runs one step at a time: collect() first");
  launched_ = &batch;
}

inline const StepOutput& StepExecutor::collect() {
  const StepBatch* batch = std::exchange(launched_, nullptr);
  if (batch == nullptr) throw std::logic_error("collect() without a launched step");
  return run(*batch);
}

}  // namespace phx
