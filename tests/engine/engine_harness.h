// The engine on a generated checkpoint, as the engine tests drive it: the whole model on one rank, a KV pool, and
// helpers to run one sequence in chunks, build scattered block tables and compare logits.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "rpc/communicator.h"
#include "tests/common/numeric.h"
#include "worker/kv_cache.h"
#include "worker/model_runner.h"
#include "worker/shard_weights.h"

namespace phx::testing {

std::filesystem::path modelDir(const std::string& preset);

// Loads once per preset per process; the runner is rebuilt per test with its own cache.
const ShardWeights& loadedWeights(const std::string& preset);
// The same with every matrix quantized to INT8 while loading.
const ShardWeights& loadedInt8Weights(const std::string& preset);

struct EngineUnderTest {
  EngineUnderTest(const ShardWeights& weights, int64_t cacheTokens, int threads, int64_t blockSize = 16,
                  KvType kvType = KvType::kBf16);

  SingleRankCommunicator comm;
  KvCache cache;
  ModelRunner runner;
};

// Runs `tokens` as one sequence through the chunk lengths given (they add up to tokens.size()), asking logits for
// every token; returns them [tokens, vocab]. `blocks` is the sequence's block table.
std::vector<float> runSequence(ModelRunner& runner, std::span<const int32_t> tokens, std::span<const int64_t> chunks,
                               const std::vector<int32_t>& blocks);

// `count` distinct block ids out of [0, poolBlocks), in a seeded random order.
std::vector<int32_t> scatteredBlocks(int64_t poolBlocks, int64_t count, uint32_t seed);

float maxAbsDiff(std::span<const float> a, std::span<const float> b);

// Deterministic pseudo-random token ids spread over the vocabulary (special ids excluded).
std::vector<int32_t> sampleTokens(int64_t count, uint32_t seed);

}  // namespace phx::testing
