// Reproducible prompts of ordinary token ids (no special tokens) for the scheduler tests.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace phx::testing {

inline std::vector<int32_t> randomPrompt(int64_t length, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> ids(1000, 90000);
  std::vector<int32_t> prompt(static_cast<size_t>(length));
  for (int32_t& id : prompt) id = ids(rng);
  return prompt;
}

}  // namespace phx::testing
