// Deterministic random weights for generated checkpoints. Counter-based: element i of a tensor is a pure function
// of (seed, tensor name, i), so any chunk of any tensor can be generated on its own, in parallel, in any order, and
// the same seed always gives the same bytes. The scale of each tensor is chosen so activations keep a steady size
// through all layers (docs/checkpoints.md explains the scheme).
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>

#include "model/config.h"

namespace phx {

// Uniform on [center - halfWidth, center + halfWidth): std = halfWidth / sqrt(3).
struct UniformInit {
  float center = 0.0f;
  float halfWidth = 0.0f;
  double stddev() const { return halfWidth / std::sqrt(3.0); }
};

// The distribution of one Phi-4 tensor, by its Hugging Face name (model.layers.N.mlp.down_proj.weight, ...).
// Throws phx::Error (invalid argument) for a name that is not a Phi3ForCausalLM weight.
UniformInit weightInit(const ModelConfig& config, std::string_view tensorName);

// The key of a tensor's random stream: depends on the seed and the tensor's name only, so a tensor's values do not
// depend on which shard holds it or in which order tensors are written.
uint64_t randomStreamKey(uint64_t seed, std::string_view tensorName);

// out[i] = bf16(center + halfWidth * (2u - 1)) where u in [0, 1) is the top 24 bits of SplitMix64's output at
// counter (first + i) of stream `key`. Rounds to nearest even like PyTorch's .to(torch.bfloat16).
void fillUniformBf16(uint64_t key, UniformInit init, int64_t first, int64_t count, uint16_t* out);

// The same bytes as fillUniformBf16, with the range split among `threads` threads (the caller's included).
void fillUniformBf16Parallel(uint64_t key, UniformInit init, int64_t first, int64_t count, uint16_t* out,
                             int threads);

}  // namespace phx
