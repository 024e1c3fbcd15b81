#include "worker/decoder_layer.h"

#include "worker/engine_ops.h"

namespace phx {

LayerGeometry layerGeometry(const ModelConfig& config, const RankShard& shard) {
  LayerGeometry g;
  g.hidden = config.hiddenSize;
  g.headDim = config.headDim();
  g.qHeads = shard.queryHeads.count;
  g.kvHeads = shard.kvHeads.count;
  g.mlpColumns = shard.mlpColumns.count;
  g.rmsNormEps = config.rmsNormEps;
  // Query head h (global) reads KV head h / group; locally, minus the first KV head this rank holds.
  const int64_t group = config.numHeads / config.numKvHeads;
  for (int64_t h = shard.queryHeads.begin; h < shard.queryHeads.end(); ++h) {
    g.kvHeadOf.push_back(int32_t(h / group - shard.kvHeads.begin));
  }
  return g;
}

LayerScratch::LayerScratch(const LayerGeometry& g, int64_t maxTokens)
    : normed(size_t(maxTokens * g.hidden)),
      qkv(size_t(maxTokens * g.qkvRows())),
      attended(size_t(maxTokens * g.qRows())),
      partial(size_t(maxTokens * g.hidden)),
      gateUp(size_t(maxTokens * 2 * g.mlpColumns)),
      mlp(size_t(maxTokens * g.mlpColumns)) {}

void decoderLayer(const LayerWeights& w, const LayerGeometry& g, const LayerStep& step, float* x) {
  const int64_t tokens = step.layout.tokenCount;
  LayerScratch& s = step.scratch;
  float* q = s.qkv.data();
  float* k = q + g.qRows();
  float* v = k + g.kvRows();
  const std::span<float> partial(s.partial.data(), size_t(tokens * g.hidden));

  // Attention block: h = x + o_proj(attention(rope(qkv_proj(rms_norm(x)))))
  ops::rmsNorm(x, tokens, g.hidden, w.inputNorm, g.rmsNormEps, s.normed.data());
  ops::matmul(s.normed.data(), tokens, w.qkv, s.qkv.data());   // column-parallel: this rank's heads
  ops::rope(q, tokens, g.qkvRows(), g.qHeads + g.kvHeads, g.headDim, step.layout.positions, step.rope);  // q, k
  ops::storeKv(k, v, g.qkvRows(), step.layout, step.cache);
  ops::attention(q, g.qkvRows(), g.kvHeadOf, g.headDim, step.layout, step.cache, s.attended.data());
  ops::matmul(s.attended.data(), tokens, w.oProj, partial.data());  // row-parallel: a partial sum
  step.comm.allReduceSum(partial);
  ops::addInPlace(x, partial.data(), tokens * g.hidden);

  // MLP block: x = h + down_proj(up * silu(gate)), [gate | up] = gate_up_proj(rms_norm(h))
  ops::rmsNorm(x, tokens, g.hidden, w.postNorm, g.rmsNormEps, s.normed.data());
  ops::matmul(s.normed.data(), tokens, w.gateUp, s.gateUp.data());  // column-parallel: this rank's columns
  ops::swiglu(s.gateUp.data(), tokens, g.mlpColumns, s.mlp.data());
  ops::matmul(s.mlp.data(), tokens, w.down, partial.data());  // row-parallel: a partial sum
  step.comm.allReduceSum(partial);
  ops::addInPlace(x, partial.data(), tokens * g.hidden);
}

}  // namespace phx
