// Runs model steps on one rank: embedding (its vocab rows) -> its decoder layers -> final norm -> lm_head (its
// vocab rows) for the tokens that need logits. Scratch buffers are sized once for the largest step; ops run on
// `threads` OpenMP threads. A rank of a later pipeline stage receives the hidden states instead of embedding, and
// one of an earlier stage sends them on instead of computing logits.
#pragma once

#include <cstdint>
#include <vector>

#include "rpc/communicator.h"
#include "rpc/step.h"
#include "worker/decoder_layer.h"
#include "worker/engine_ops.h"
#include "worker/kv_cache.h"
#include "worker/shard_weights.h"

namespace phx {

struct RunnerOptions {
  int64_t maxStepTokens = 512;  // the most tokens one step may carry (scratch is sized for it)
  int threads = 0;              // 0: OpenMP's default
  int previousStagePeer = -1;   // where hidden states come from when the shard is not the first stage
  int nextStagePeer = -1;       // where they go when it is not the last
};

class ModelRunner final : public StepExecutor {
 public:
  // Keeps references to all three. Throws phx::Error (invalid argument) when the cache does not fit the shard.
  ModelRunner(const ShardWeights& weights, KvCache& cache, Communicator& comm, const RunnerOptions& options);

  int64_t kvBlockSize() const override { return cache_.shape().blockSize; }
  int64_t kvBlockCount() const override { return cache_.shape().numBlocks; }
  // Throws phx::Error (invalid argument) for a malformed batch or one over maxStepTokens.
  const StepOutput& run(const StepBatch& batch) override;

  const RunnerOptions& options() const { return options_; }
  // Time per op summed over the steps run so far.
  const ops::OpProfile& profile() const { return profile_; }
  void resetProfile() { profile_ = {}; }

 private:
  void embedOrReceive(const StepBatch& batch, int64_t tokens);
  // Dense logits of the vocab slice, or (candidates > 0) each row's top candidates.
  void computeLogits(const StepLayout& layout, bool candidates);  // candidates: per row, layout.rowCandidates

  const ShardWeights& weights_;
  KvCache& cache_;
  Communicator& comm_;
  RunnerOptions options_;
  LayerGeometry geometry_;
  LayerScratch scratch_;
  RopeTable rope_;
  std::vector<float> hidden_;       // [maxStepTokens, hidden]: the residual stream
  std::vector<float> logitInputs_;  // [maxStepTokens, hidden]: final-normed rows of the logit tokens
  std::vector<float> denseLogits_;  // [rows, vocabCount]: the slice's logits when the step asks for candidates
  StepOutput output_;
  ops::OpProfile profile_;
};

}  // namespace phx
