#include "tests/engine/engine_harness.h"

#include <algorithm>
#include <map>
#include <numeric>

#include <gtest/gtest.h>

#include "tests/common/test_files.h"

namespace phx::testing {

std::filesystem::path modelDir(const std::string& preset) {
  return ::phx::testing::testModelDir(preset);
}

namespace {

const ShardWeights& loadedOnce(const std::string& preset, WeightType matrices) {
  static std::map<std::pair<std::string, WeightType>, std::unique_ptr<ShardWeights>> loaded;
  auto& slot = loaded[{preset, matrices}];
  if (!slot) {
    const auto checkpoint = Checkpoint::open(modelDir(preset));
    slot = std::make_unique<ShardWeights>(
        loadShardWeights(*checkpoint, wholeModelShard(checkpoint->config()), nullptr, matrices));
  }
  return *slot;
}

}  // namespace

const ShardWeights& loadedWeights(const std::string& preset) { return loadedOnce(preset, WeightType::kBf16); }

const ShardWeights& loadedInt8Weights(const std::string& preset) { return loadedOnce(preset, WeightType::kInt8); }

EngineUnderTest::EngineUnderTest(const ShardWeights& weights, int64_t cacheTokens, int threads, int64_t blockSize,
                                 KvType kvType)
    : cache(kvCacheShapeFor(weights.config, weights.shard, blockSize, cacheTokens, kvType)),
      runner(weights, cache, comm, {.maxStepTokens = 256, .threads = threads}) {}

std::vector<float> runSequence(ModelRunner& runner, std::span<const int32_t> tokens, std::span<const int64_t> chunks,
                               const std::vector<int32_t>& blocks) {
  std::vector<float> logits;
  int64_t cached = 0;
  for (int64_t chunk : chunks) {
    StepBatch batch;
    batch.tokens.assign(tokens.begin() + cached, tokens.begin() + cached + chunk);
    batch.sequences.push_back({cached, chunk, blocks, LogitsFor::kAll});
    const StepOutput& out = runner.run(batch);
    logits.insert(logits.end(), out.logits.begin(), out.logits.end());
    cached += chunk;
  }
  EXPECT_EQ(cached, int64_t(tokens.size())) << "chunks do not add up to the sequence";
  return logits;
}

std::vector<int32_t> scatteredBlocks(int64_t poolBlocks, int64_t count, uint32_t seed) {
  std::vector<int32_t> ids(static_cast<size_t>(poolBlocks));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(seed));
  ids.resize(size_t(count));
  return ids;
}

float maxAbsDiff(std::span<const float> a, std::span<const float> b) {
  float worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

std::vector<int32_t> sampleTokens(int64_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> id(0, 100255);  // cl100k's ordinary ranks
  std::vector<int32_t> tokens(static_cast<size_t>(count));
  for (int32_t& token : tokens) token = id(rng);
  return tokens;
}

}  // namespace phx::testing
