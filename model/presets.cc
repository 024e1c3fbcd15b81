#include "model/presets.h"

#include "common/error.h"

namespace phx {
namespace {

// What every preset shares with microsoft/phi-4's config.json.
ModelConfig phi4Family(int64_t hidden, int64_t layers, int64_t heads, int64_t kvHeads, int64_t intermediate) {
  ModelConfig c;
  c.hiddenSize = hidden;
  c.numLayers = layers;
  c.numHeads = heads;
  c.numKvHeads = kvHeads;
  c.intermediateSize = intermediate;
  c.vocabSize = 100352;
  c.maxPositionEmbeddings = 16384;
  c.rmsNormEps = 1e-5;
  c.ropeTheta = 250000.0;
  c.bosTokenId = 100257;  // <|endoftext|>
  c.eosTokenId = 100265;  // <|im_end|>
  c.padTokenId = 100349;  // <|dummy_85|>
  c.torchDtype = "bfloat16";
  return c;
}

std::vector<ModelPreset> buildPresets() {
  return {
      // 8 query heads of dim 8 so tensor-parallel tests can use up to 8 ranks; the vocabulary dominates its size.
      {"tiny", "hidden 64, 2 layers, 8 heads (2 KV) of dim 8, MLP 192: the unit-test model",
       phi4Family(64, 2, 8, 2, 192)},
      {"small", "hidden 1024, 4 layers, 8 heads (2 KV) of dim 128, MLP 3584", phi4Family(1024, 4, 8, 2, 3584)},
      {"phi4-L4", "Phi-4's exact width (hidden 5120, 40 heads, 10 KV, MLP 17920), 4 layers",
       phi4Family(5120, 4, 40, 10, 17920)},
      {"phi4", "the full Phi-4 shape: hidden 5120, 40 layers, 40 heads (10 KV), MLP 17920",
       phi4Family(5120, 40, 40, 10, 17920)},
  };
}

}  // namespace

const std::vector<ModelPreset>& modelPresets() {
  static const std::vector<ModelPreset> presets = buildPresets();
  return presets;
}

const ModelPreset& findModelPreset(std::string_view name) {
  std::string known;
  for (const ModelPreset& preset : modelPresets()) {
    if (preset.name == name) return preset;
    known += (known.empty() ? "" : ", ") + preset.name;
  }
  throwInvalidArgument("unknown preset '" + std::string(name) + "' (known presets: " + known + ")");
}

}  // namespace phx
