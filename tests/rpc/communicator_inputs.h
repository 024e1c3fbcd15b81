// Inputs the communicator tests (UCX and MPI) give each rank.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace phx::testing {

// Rank r's i-th input: small integers, so every sum is exact in float whatever the order.
inline float integerInput(int rank, std::size_t i) {
  return static_cast<float>(static_cast<int>((i * 7 + rank * 13) % 1001) - 500);
}

// `count` uniform values in [-1, 1), seeded by `seed + rank`.
inline std::vector<float> randomInput(int rank, std::size_t count, uint32_t seed) {
  std::mt19937 generator(seed + uint32_t(rank));
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> data(count);
  for (auto& x : data) x = uniform(generator);
  return data;
}

}  // namespace phx::testing
