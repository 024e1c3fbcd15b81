// What the cluster tests share: a coordinator-side ClusterExecutor over real worker processes, the same model in
// this process (LocalEngine) as the yardstick, and a short schedule (a prefill with logits for every token, then
// greedy decode on candidates) run through both.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/cluster_executor.h"
#include "partition/shard_plan.h"
#include "rpc/step.h"
#include "worker/local_engine.h"

namespace phx::testing {

std::string modelPath(const std::string& preset);
constexpr int64_t kBlockSize = 16;
constexpr int64_t kBlocks = 16;

// How the engines hold their matrices and KV cache (the default: as the checkpoint, BF16 KV).
struct Dtypes {
  std::optional<WeightType> weights;  // unset: the checkpoint's own (for a cluster: each worker's --dtype)
  KvType kv = KvType::kBf16;
};

// One LocalEngine per preset and dtypes per process (threads 1, the cluster's KV shape).
LocalEngine& localEngine(const std::string& preset, const Dtypes& dtypes = {});

ShardPlan planFor(const std::string& preset, int tp, int pp, WeightType matrices = WeightType::kBf16);
// A TP-only cluster of `endpoints` on `preset` with the harness's KV shape and a generous connect timeout (60 s:
// ctest runs tests side by side), logging nothing; for tests that change an option before starting.
ClusterExecutorOptions clusterOptions(const std::string& preset, const std::vector<std::string>& endpoints);
std::unique_ptr<ClusterExecutor> startCluster(const std::string& preset, const ShardPlan& plan,
                                              const std::vector<std::string>& endpoints, const Dtypes& dtypes = {});

struct ScheduleResult {
  std::vector<float> prefillLogits;  // [prompt tokens, vocab]
  std::vector<int32_t> greedy;       // decoded tokens
  std::vector<float> greedyLogprobs;
};

// A 9-token prefill (logits for every token, dense) then `decode` greedy tokens; candidates > 0 decodes on
// candidates (what a cluster sends), 0 on dense logits.
ScheduleResult runSchedule(StepExecutor& executor, int decode, int32_t candidates, uint32_t seed = 5);

// The checkpoint bytes a shard's slices hold (BF16): what a worker must read, no more.
int64_t shardSliceBytes(const std::string& preset, const RankShard& shard);

}  // namespace phx::testing
