#include "worker/model_runner.h"

#include <cstring>
#include <string>

#include "common/error.h"
#include "kernels/threading.h"
#include "worker/logit_candidates.h"

namespace phx {
namespace {

std::span<std::byte> asBytes(float* data, int64_t count) {
  return {reinterpret_cast<std::byte*>(data), size_t(count) * sizeof(float)};
}

void checkCacheFits(const KvCacheShape& cache, const LayerGeometry& g, const RankShard& shard) {
  if (cache.layers != shard.layers.count || cache.kvHeads != g.kvHeads || cache.headDim != g.headDim) {
    throwInvalidArgument("model runner: the KV cache holds " + std::to_string(cache.layers) + " layers x " +
                         std::to_string(cache.kvHeads) + " KV heads of dim " + std::to_string(cache.headDim) +
                         ", the shard needs " + std::to_string(shard.layers.count) + " x " +
                         std::to_string(g.kvHeads) + " of dim " + std::to_string(g.headDim));
  }
}

// Checked before any buffer is sized from it.
int64_t checkedMaxStepTokens(int64_t maxStepTokens) {
  if (maxStepTokens < 1) throwInvalidArgument("model runner: maxStepTokens must be at least 1");
  return maxStepTokens;
}

}  // namespace

ModelRunner::ModelRunner(const ShardWeights& weights, KvCache& cache, Communicator& comm,
                         const RunnerOptions& options)
    : weights_(weights),
      cache_(cache),
      comm_(comm),
      options_(options),
      geometry_(layerGeometry(weights.config, weights.shard)),
      scratch_(geometry_, checkedMaxStepTokens(options.maxStepTokens)),
      rope_(weights.config.headDim(), weights.config.ropeTheta, weights.config.maxPositionEmbeddings),
      hidden_(size_t(options.maxStepTokens * weights.config.hiddenSize)),
      logitInputs_(size_t(options.maxStepTokens * weights.config.hiddenSize)) {
  checkCacheFits(cache.shape(), geometry_, weights.shard);
  output_.vocabBegin = weights.shard.vocabRows.begin;
  output_.vocabCount = weights.shard.lastStage ? weights.shard.vocabRows.count : 0;
}

const StepOutput& ModelRunner::run(const StepBatch& batch) {
  const ModelConfig& config = weights_.config;
  const StepLayout layout = layoutStep(batch, {.vocabSize = config.vocabSize,
                                               .blockSize = cache_.shape().blockSize,
                                               .numBlocks = cache_.shape().numBlocks,
                                               .maxPositions = config.maxPositionEmbeddings,
                                               .maxStepTokens = options_.maxStepTokens});
  if (batch.candidates < 0) {
    throwInvalidArgument("model runner: the step asks for " + std::to_string(batch.candidates) +
                         " candidates per row; expected 0 (dense logits) or more");
  }
  // Per step rather than once: runners with different thread counts may share the process (the thread tests).
  if (options_.threads > 0) setKernelThreads(options_.threads);
  ops::ProfileScope profiling(profile_);
  embedOrReceive(batch, layout.tokenCount);
  for (size_t i = 0; i < weights_.layers.size(); ++i) {
    const LayerStep step{layout, cache_.layer(int64_t(i)), scratch_, comm_, rope_};
    decoderLayer(weights_.layers[i], geometry_, step, hidden_.data());
  }
  if (weights_.shard.lastStage) {
    computeLogits(layout, batch.candidates > 0);
  } else {
    comm_.send(options_.nextStagePeer, asBytes(hidden_.data(), layout.tokenCount * config.hiddenSize));
    output_.rows = 0;
    output_.logits.clear();
    output_.candidates.clear();
  }
  return output_;
}

void ModelRunner::embedOrReceive(const StepBatch& batch, int64_t tokens) {
  const int64_t hidden = weights_.config.hiddenSize;
  if (!weights_.shard.firstStage) {
    comm_.recv(options_.previousStagePeer, asBytes(hidden_.data(), tokens * hidden));
    return;
  }
  const IndexRange& vocab = weights_.shard.vocabRows;
  ops::embed(weights_.embedding, vocab.begin, vocab.count, hidden, batch.tokens, hidden_.data());
  // A rank holding part of the vocabulary has zeros for the other ids: the group's sum is the embedding.
  if (vocab.count < weights_.config.vocabSize) comm_.allReduceSum({hidden_.data(), size_t(tokens * hidden)});
}

void ModelRunner::computeLogits(const StepLayout& layout, bool candidates) {
  const int64_t hidden = weights_.config.hiddenSize;
  const int64_t rows = int64_t(layout.logitTokens.size());
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(logitInputs_.data() + r * hidden, hidden_.data() + layout.logitTokens[size_t(r)] * hidden,
                size_t(hidden) * sizeof(float));
  }
  ops::rmsNorm(logitInputs_.data(), rows, hidden, weights_.finalNorm, weights_.config.rmsNormEps,
               logitInputs_.data());
  output_.rows = rows;
  // Candidates are computed from the same dense slice, so a LocalEngine and a cluster answer alike.
  std::vector<float>& dense = candidates ? denseLogits_ : output_.logits;
  dense.resize(size_t(rows * output_.vocabCount));
  if (rows > 0) ops::matmul(logitInputs_.data(), rows, weights_.lmHead, dense.data());
  output_.candidates.clear();
  if (candidates) {
    output_.logits.clear();
    for (int64_t r = 0; r < rows; ++r) {
      const std::span<const float> row(dense.data() + r * output_.vocabCount, size_t(output_.vocabCount));
      output_.candidates.push_back(topLogitCandidates(row, output_.vocabBegin, layout.rowCandidates[size_t(r)]));
    }
  }
}

}  // namespace phx
