// Named model shapes for `phalanx make-model`: Phi-4's architecture at sizes from a unit-test model to the full
// 14.7B-parameter network. All share Phi-4's vocabulary (100352 rows, so the real tokenizer's ids fit), RoPE theta,
// norm epsilon and special token ids; they differ only in width and depth.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "model/config.h"

namespace phx {

struct ModelPreset {
  std::string name;
  std::string summary;  // one line for --help
  ModelConfig config;
};

// tiny, small, phi4-L4, phi4 (in increasing size).
const std::vector<ModelPreset>& modelPresets();

// Throws phx::Error (invalid argument) naming the unknown preset and listing the known ones.
const ModelPreset& findModelPreset(std::string_view name);

}  // namespace phx
