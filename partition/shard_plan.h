// The shard plan of a cluster, as data: pipeline stages as layer ranges and, in each stage, a tensor-parallel group
// whose ranks hold query heads, KV heads, MLP columns and vocab rows. Computed once by the coordinator from the
// model config and the cluster description, validated once, printed by `phalanx plan`, and sent to every worker,
// which needs nothing of Phi-4 beyond its own RankShard.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "partition/rank_shard.h"

namespace phx {

struct ClusterSpec {
  int tp = 1;  // tensor-parallel ranks per stage
  int pp = 1;  // pipeline stages
  // Relative memory of each stage's nodes (pp entries, or empty for equal): layers are split in proportion.
  std::vector<double> stageMemoryWeights;
  int64_t rankMemoryBytes = 0;  // each rank's memory budget for weights + KV cache; 0: unlimited
  int64_t kvTokens = 4096;      // KV cache each rank reserves, in tokens (counted against rankMemoryBytes)
  int64_t kvBytesPerElement = 2;  // BF16 cache
};

struct RankPlan {
  int worker = 0;  // global index: stage * tp + tpRank; the index send/recv and the control plane use
  int stage = 0;
  int tpRank = 0;
  RankShard shard;
  int64_t weightBytes = 0;          // resident weight bytes of the shard (BF16, as loaded)
  int64_t kvBytesPer1kTokens = 0;   // this rank's KV cache bytes per 1,024 tokens of context
};

struct ShardPlan {
  int tp = 1;
  int pp = 1;
  std::vector<RankPlan> ranks;  // ordered by worker index
  // Bytes one token adds to the all-reduces of one TP group per forward pass (two per layer, plus the embedding
  // where the vocabulary is split), summed over the stages.
  int64_t allReduceBytesPerToken = 0;

  const RankPlan& rank(int stage, int tpRank) const { return ranks[size_t(stage * tp + tpRank)]; }
  int workers() const { return tp * pp; }
};

// Throws phx::Error (invalid argument) naming the constraint a cluster cannot meet (e.g. more stages than layers,
// more ranks than query heads, a rank's weights + KV over rankMemoryBytes).
ShardPlan makeShardPlan(const ModelConfig& config, const ClusterSpec& spec);

}  // namespace phx
