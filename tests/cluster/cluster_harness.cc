#include "tests/cluster/cluster_harness.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "model/checkpoint.h"
#include "tests/common/test_files.h"
#include "worker/shard_weights.h"

namespace phx::testing {

std::string modelPath(const std::string& preset) { return ::phx::testing::testModelDir(preset).string(); }

LocalEngine& localEngine(const std::string& preset, const Dtypes& dtypes) {
  static std::map<std::string, std::unique_ptr<LocalEngine>> engines;
  const std::string weights = dtypes.weights ? weightTypeName(*dtypes.weights) : "auto";
  auto& engine = engines[preset + " " + weights + " " + kvTypeName(dtypes.kv)];
  if (!engine) {
    LocalEngineOptions options;
    options.kvTokens = kBlockSize * kBlocks;
    options.kvBlockSize = kBlockSize;
    options.threads = 1;
    options.weightType = dtypes.weights;
    options.kvType = dtypes.kv;
    engine = LocalEngine::open(modelPath(preset), options);
  }
  return *engine;
}

ShardPlan planFor(const std::string& preset, int tp, int pp, WeightType matrices) {
  ClusterSpec spec;
  spec.tp = tp;
  spec.pp = pp;
  spec.kvTokens = kBlockSize * kBlocks;
  spec.matrices = matrices;
  return makeShardPlan(localEngine(preset).config(), spec);
}

ClusterExecutorOptions clusterOptions(const std::string& preset, const std::vector<std::string>& endpoints) {
  ClusterExecutorOptions options;
  options.endpoints = endpoints;
  options.plan = planFor(preset, int(endpoints.size()), 1);
  options.checkpointDir = modelPath(preset);
  options.kvBlockSize = kBlockSize;
  options.kvBlocks = kBlocks;
  options.maxStepTokens = 64;
  options.connectTimeout = std::chrono::milliseconds(60000);
  options.log = [](const std::string&) {};
  return options;
}

std::unique_ptr<ClusterExecutor> startCluster(const std::string& preset, const ShardPlan& plan,
                                              const std::vector<std::string>& endpoints, const Dtypes& dtypes) {
  ClusterExecutorOptions options;
  options.weightType = dtypes.weights;
  options.kvType = dtypes.kv;
  options.endpoints = endpoints;
  options.plan = plan;
  options.checkpointDir = modelPath(preset);
  options.kvBlockSize = kBlockSize;
  options.kvBlocks = kBlocks;
  options.threadsPerWorker = 1;
  options.maxStepTokens = 64;
  options.log = [](const std::string&) {};
  return ClusterExecutor::start(options);
}

ScheduleResult runSchedule(StepExecutor& executor, int decode, int32_t candidates, uint32_t seed) {
  const int64_t vocab = localEngine("tiny").config().vocabSize;  // both presets share the Phi-4 vocabulary
  std::vector<int32_t> prompt(9);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t((seed * 7919u + i * 104729u) % 100000u);
  const std::vector<int32_t> blocks = {3, 7};
  ScheduleResult result;
  StepBatch prefill;
  prefill.tokens = prompt;
  prefill.sequences = {{0, int64_t(prompt.size()), blocks, LogitsFor::kAll}};
  const StepOutput& first = executor.run(prefill);
  EXPECT_EQ(first.vocabCount, vocab);
  result.prefillLogits = first.logits;
  int32_t next = int32_t(std::max_element(first.row(first.rows - 1).begin(), first.row(first.rows - 1).end()) -
                         first.row(first.rows - 1).begin());
  for (int i = 0; i < decode; ++i) {
    result.greedy.push_back(next);
    StepBatch step;
    step.tokens = {next};
    step.sequences = {{int64_t(prompt.size()) + i, 1, blocks, LogitsFor::kLast}};
    step.candidates = candidates;
    const StepOutput& out = executor.run(step);
    if (candidates > 0) {
      const LogitCandidates& row = out.candidates.at(0);
      next = row.ids.front();
      result.greedyLogprobs.push_back(row.logits.front() - row.logSumExp);
    } else {
      const auto row = out.row(0);
      const auto best = std::max_element(row.begin(), row.end());
      next = int32_t(best - row.begin());
      double sum = 0;
      for (float l : row) sum += std::exp(double(l) - *best);
      result.greedyLogprobs.push_back(float(-std::log(sum)));
    }
  }
  result.greedy.push_back(next);
  return result;
}

int64_t shardSliceBytes(const std::string& preset, const RankShard& shard) {
  int64_t bytes = 0;
  for (const TensorSlice& slice : shardTensorSlices(localEngine(preset).config(), shard)) {
    bytes += slice.rows * slice.cols * 2;
  }
  return bytes;
}

}  // namespace phx::testing
