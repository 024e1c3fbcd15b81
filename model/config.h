// The model's config.json: the Phi-3 family's fields as Hugging Face writes them for microsoft/phi-4, parsed and
// validated once. What this build cannot compute (LongRoPE, partial rotary, sliding windows, tied embeddings) is
// refused with a message rather than computed wrongly.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace phx {

struct ModelConfig {
  int64_t hiddenSize = 0;
  int64_t numLayers = 0;
  int64_t numHeads = 0;
  int64_t numKvHeads = 0;
  int64_t intermediateSize = 0;
  int64_t vocabSize = 0;
  int64_t maxPositionEmbeddings = 0;
  double rmsNormEps = 1e-5;
  double ropeTheta = 10000.0;
  int64_t bosTokenId = 0;
  int64_t eosTokenId = 0;
  int64_t padTokenId = 0;
  std::string torchDtype = "bfloat16";

  int64_t headDim() const { return hiddenSize / numHeads; }
  int64_t qDim() const { return numHeads * headDim(); }
  int64_t kvDim() const { return numKvHeads * headDim(); }
  int64_t qkvRows() const { return qDim() + 2 * kvDim(); }
};

// Parses and validates; `source` names the file in error messages.
ModelConfig parseModelConfig(const nlohmann::json& json, const std::string& source);
ModelConfig loadModelConfig(const std::filesystem::path& configFile);

// config.json with the same keys and values microsoft/phi-4 ships.
nlohmann::json modelConfigToJson(const ModelConfig& config);

}  // namespace phx
