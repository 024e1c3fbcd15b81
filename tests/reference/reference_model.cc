#include "tests/reference/reference_model.h"

#include <string>

#include "common/error.h"
#include "tests/reference/ops.h"

namespace phx::reference {
namespace {

std::string layerName(int64_t layer, const char* suffix) {
  return "model.layers." + std::to_string(layer) + "." + suffix;
}

// rmsNorm applied to each of `tokens` rows of x: [tokens, n].
std::vector<float> normRows(const std::vector<float>& x, int64_t tokens, const std::vector<float>& weight,
                            double eps) {
  const size_t n = weight.size();
  std::vector<float> y(x.size());
  for (int64_t t = 0; t < tokens; ++t) {
    rmsNorm(std::span(x).subspan(t * n, n), weight, eps, std::span(y).subspan(t * n, n));
  }
  return y;
}

double lastRowRms(const std::vector<float>& x, int64_t tokens) {
  const size_t n = x.size() / size_t(tokens);
  return rms(std::span(x).subspan(size_t(tokens - 1) * n, n));
}

void addInPlace(std::vector<float>& x, const std::vector<float>& delta) {
  for (size_t i = 0; i < x.size(); ++i) x[i] += delta[i];
}

}  // namespace

struct ReferenceModel::LayerWeights {
  std::vector<float> inputNorm;          // [hidden]
  const StoredTensor* qkv = nullptr;     // [q + 2 kv, hidden]: rows Q | K | V
  const StoredTensor* oProj = nullptr;   // [hidden, q]
  std::vector<float> postNorm;           // [hidden]
  const StoredTensor* gateUp = nullptr;  // [2 I, hidden]: rows gate | up
  const StoredTensor* down = nullptr;    // [hidden, I]
};

ReferenceModel::ReferenceModel(const std::filesystem::path& modelDir)
    : modelDir_(modelDir), config_(loadModelConfig(modelDir / "config.json")),
      weights_(std::make_unique<SafetensorsReader>(modelDir)) {
  const ModelConfig& c = config_;
  weights_->tensor("model.embed_tokens.weight", {c.vocabSize, c.hiddenSize});
  for (int64_t layer = 0; layer < c.numLayers; ++layer) layerWeights(layer);
  weights_->tensor("model.norm.weight", {c.hiddenSize});
  weights_->tensor("lm_head.weight", {c.vocabSize, c.hiddenSize});
  // Small checkpoints stay mapped between calls: tests run many forward passes, and re-faulting costs time.
  releaseAfterUse_ = weights_->totalBytes() > (uint64_t(4) << 30);
}

ReferenceModel::~ReferenceModel() = default;

// Shapes as Phi3ForCausalLM declares them; the reader checks each one.
ReferenceModel::LayerWeights ReferenceModel::layerWeights(int64_t layer) const {
  const ModelConfig& c = config_;
  const int64_t q = c.numHeads * c.headDim(), kv = c.numKvHeads * c.headDim();
  LayerWeights w;
  w.inputNorm = weights_->tensor(layerName(layer, "input_layernorm.weight"), {c.hiddenSize}).toFloat();
  w.qkv = &weights_->tensor(layerName(layer, "self_attn.qkv_proj.weight"), {q + 2 * kv, c.hiddenSize});
  w.oProj = &weights_->tensor(layerName(layer, "self_attn.o_proj.weight"), {c.hiddenSize, q});
  w.postNorm = weights_->tensor(layerName(layer, "post_attention_layernorm.weight"), {c.hiddenSize}).toFloat();
  w.gateUp = &weights_->tensor(layerName(layer, "mlp.gate_up_proj.weight"), {2 * c.intermediateSize, c.hiddenSize});
  w.down = &weights_->tensor(layerName(layer, "mlp.down_proj.weight"), {c.hiddenSize, c.intermediateSize});
  return w;
}

std::vector<float> ReferenceModel::forward(std::span<const int32_t> tokens, bool lastOnly,
                                           std::vector<float>* layerRms) const {
  ActivationNorms norms;
  std::vector<float> result = forwardWithNorms(tokens, lastOnly, &norms);
  if (layerRms != nullptr) layerRms->assign(norms.afterLayer.begin(), norms.afterLayer.end());
  return result;
}

std::vector<float> ReferenceModel::forwardWithNorms(std::span<const int32_t> tokens, bool lastOnly,
                                                    ActivationNorms* norms) const {
  if (tokens.empty()) throwInvalidArgument("reference forward: the token sequence is empty");
  ActivationNorms local;
  ActivationNorms& out = norms != nullptr ? *norms : local;
  out = ActivationNorms{};
  const int64_t count = int64_t(tokens.size());
  std::vector<float> x = embed(tokens);  // x: [tokens, hidden], the residual stream
  out.embedding = lastRowRms(x, count);
  for (int64_t layer = 0; layer < config_.numLayers; ++layer) {
    decoderLayer(layer, count, x, out);
    out.afterLayer.push_back(lastRowRms(x, count));
  }
  return logits(x, count, lastOnly, out);
}

std::vector<float> ReferenceModel::embed(std::span<const int32_t> tokens) const {
  const ModelConfig& c = config_;
  const StoredTensor& table = weights_->tensor("model.embed_tokens.weight", {c.vocabSize, c.hiddenSize});
  std::vector<float> x(tokens.size() * size_t(c.hiddenSize));
  for (size_t t = 0; t < tokens.size(); ++t) {
    if (tokens[t] < 0 || tokens[t] >= c.vocabSize) {
      throwInvalidArgument("reference forward: token " + std::to_string(tokens[t]) + " at position " +
                           std::to_string(t) + " is outside the vocabulary [0, " + std::to_string(c.vocabSize) + ")");
    }
    table.rowToFloat(tokens[t], x.data() + t * size_t(c.hiddenSize));
  }
  return x;
}

void ReferenceModel::decoderLayer(int64_t layer, int64_t tokens, std::vector<float>& x,
                                  ActivationNorms& norms) const {
  const ModelConfig& c = config_;
  const LayerWeights w = layerWeights(layer);
  for (const StoredTensor* t : {w.qkv, w.oProj, w.gateUp, w.down}) t->prefetch();
  const int64_t d = c.headDim(), q = c.numHeads * d, kv = c.numKvHeads * d, inter = c.intermediateSize;

  // Attention: qkv: [tokens, q + 2 kv] -> Q [tokens, q], K and V [tokens, kv], RoPE on Q and K per head.
  const std::vector<float> normed = normRows(x, tokens, w.inputNorm, c.rmsNormEps);
  std::vector<float> qkv(static_cast<size_t>(tokens * (q + 2 * kv)));
  linear(normed.data(), tokens, *w.qkv, qkv.data());
  std::vector<float> qs(static_cast<size_t>(tokens * q));
  std::vector<float> ks(static_cast<size_t>(tokens * kv)), vs(static_cast<size_t>(tokens * kv));
  for (int64_t t = 0; t < tokens; ++t) {
    const float* row = qkv.data() + t * (q + 2 * kv);
    std::copy(row, row + q, qs.begin() + t * q);
    std::copy(row + q, row + q + kv, ks.begin() + t * kv);
    std::copy(row + q + kv, row + q + 2 * kv, vs.begin() + t * kv);
    for (int64_t h = 0; h < c.numHeads; ++h) applyRope(std::span(qs).subspan(t * q + h * d, d), t, c.ropeTheta);
    for (int64_t h = 0; h < c.numKvHeads; ++h) applyRope(std::span(ks).subspan(t * kv + h * d, d), t, c.ropeTheta);
  }
  std::vector<float> attended(static_cast<size_t>(tokens * q));
  causalAttention({tokens, c.numHeads, c.numKvHeads, d}, qs.data(), ks.data(), vs.data(), attended.data());
  std::vector<float> attentionOut(x.size());
  linear(attended.data(), tokens, *w.oProj, attentionOut.data());
  norms.attentionOut.push_back(lastRowRms(attentionOut, tokens));
  addInPlace(x, attentionOut);

  // MLP: gateUp: [tokens, 2 I] = [gate | up]; act = up * silu(gate): [tokens, I].
  const std::vector<float> postNormed = normRows(x, tokens, w.postNorm, c.rmsNormEps);
  std::vector<float> gateUp(static_cast<size_t>(tokens * 2 * inter));
  linear(postNormed.data(), tokens, *w.gateUp, gateUp.data());
  std::vector<float> act(static_cast<size_t>(tokens * inter));
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t i = 0; i < inter; ++i) {
      act[t * inter + i] = gateUp[t * 2 * inter + inter + i] * silu(gateUp[t * 2 * inter + i]);
    }
  }
  std::vector<float> mlpOut(x.size());
  linear(act.data(), tokens, *w.down, mlpOut.data());
  norms.mlpOut.push_back(lastRowRms(mlpOut, tokens));
  addInPlace(x, mlpOut);
  if (releaseAfterUse_) {
    for (const StoredTensor* t : {w.qkv, w.oProj, w.gateUp, w.down}) t->release();
  }
}

std::vector<float> ReferenceModel::logits(const std::vector<float>& x, int64_t tokens, bool lastOnly,
                                          ActivationNorms& norms) const {
  const ModelConfig& c = config_;
  const std::vector<float> finalWeight = weights_->tensor("model.norm.weight", {c.hiddenSize}).toFloat();
  const std::vector<float> normed = normRows(x, tokens, finalWeight, c.rmsNormEps);
  norms.finalNorm = lastRowRms(normed, tokens);
  const StoredTensor& head = weights_->tensor("lm_head.weight", {c.vocabSize, c.hiddenSize});
  head.prefetch();
  const int64_t first = lastOnly ? tokens - 1 : 0;
  std::vector<float> result(static_cast<size_t>((tokens - first) * c.vocabSize));
  linear(normed.data() + first * c.hiddenSize, tokens - first, head, result.data());
  if (releaseAfterUse_) head.release();
  return result;
}

}  // namespace phx::reference
