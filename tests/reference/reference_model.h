// An independent, plain fp32 implementation of the whole Phi-4 forward pass (Hugging Face Phi3ForCausalLM), the
// yardstick the engine's tests compare against. Written from the HF definition with simple loops; it shares no code
// with kernels/, the engine or the production loader (model/checkpoint.*, model/safetensors.*): it reads weights
// through its own safetensors reader and uses only model/config.h and model/bf16.h.
//
// Per layer, for the residual stream x: [tokens, hidden]:
//   h = x + o_proj(attention(rope(qkv_proj(rmsnorm(x)))))
//   x = h + down_proj(up * silu(gate)),   [gate ; up] = gate_up_proj(rmsnorm(h))
// then logits = lm_head(rmsnorm(x)). Weights stay BF16 in the mapped files and are converted row by row on use;
// checkpoints over 4 GiB are streamed (each layer's pages dropped after use), so even the full 40-layer model runs
// in about 1 GB of RSS.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <vector>

#include "model/config.h"
#include "tests/reference/safetensors_reader.h"

namespace phx::reference {

// RMS figures of one forward pass, all at the last position: what the per-layer activation report prints.
struct ActivationNorms {
  double embedding = 0;               // the embedding output (the residual stream entering layer 0)
  std::vector<double> attentionOut;   // per layer: o_proj's output, before it is added to the stream
  std::vector<double> mlpOut;         // per layer: down_proj's output
  std::vector<double> afterLayer;     // per layer: the residual stream after the layer
  double finalNorm = 0;               // the final RMSNorm's output (what lm_head reads)
};

class ReferenceModel {
 public:
  // Reads config.json and maps the weights; every tensor's presence and shape is checked here, so a bad
  // checkpoint fails before any compute. Throws phx::Error naming the file or tensor.
  explicit ReferenceModel(const std::filesystem::path& modelDir);
  ~ReferenceModel();

  const ModelConfig& config() const { return config_; }

  // Full recompute over the whole sequence, no cache. Returns logits [tokens.size(), vocab] row-major, or only the
  // last row when lastOnly. layerRms (optional): per layer, the RMS of the residual stream after the layer at the
  // last position.
  std::vector<float> forward(std::span<const int32_t> tokens, bool lastOnly = false,
                             std::vector<float>* layerRms = nullptr) const;

  // The same pass, filling every figure of ActivationNorms.
  std::vector<float> forwardWithNorms(std::span<const int32_t> tokens, bool lastOnly, ActivationNorms* norms) const;

 private:
  struct LayerWeights;
  LayerWeights layerWeights(int64_t layer) const;
  std::vector<float> embed(std::span<const int32_t> tokens) const;
  void decoderLayer(int64_t layer, int64_t tokens, std::vector<float>& x, ActivationNorms& norms) const;
  std::vector<float> logits(const std::vector<float>& x, int64_t tokens, bool lastOnly, ActivationNorms& norms) const;

  std::filesystem::path modelDir_;
  ModelConfig config_;
  std::unique_ptr<SafetensorsReader> weights_;
  bool releaseAfterUse_ = false;  // big checkpoints: drop each layer's pages once used (see StoredTensor::release)
};

}  // namespace phx::reference
