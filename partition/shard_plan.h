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
#include "partition/shard_memory.h"

namespace phx {

struct ClusterSpec {
  int tp = 1;  // tensor-parallel ranks per stage
  int pp = 1;  // pipeline stages
  // Relative memory of each stage's nodes (pp entries, or empty for equal): layers are split in proportion.
  std::vector<double> stageMemoryWeights;
  int64_t rankMemoryBytes = 0;  // each rank's memory budget for weights + KV cache; 0: unlimited
  int64_t kvTokens = 4096;      // KV cache each rank reserves, in tokens (counted against rankMemoryBytes)
  int64_t kvBytesPerElement = 2;  // BF16 cache
  WeightType matrices = WeightType::kBf16;  // how the ranks hold their matrices (`--dtype`)
  // MLP columns and vocab rows are split in multiples of this (halved for models too small to give every rank one
  // block): the packed kernels' 64-row block, so no rank's matrices carry padding.
  int64_t preferredBlock = 64;
};

struct RankPlan {
  int worker = 0;  // global index: stage * tp + tpRank; the index send/recv and the control plane use
  int stage = 0;
  int tpRank = 0;
  RankShard shard;
  int64_t weightBytes = 0;          // resident weight bytes as loaded: packed matrices, f32 norms
  int64_t kvBytesPer1kTokens = 0;   // this rank's KV cache bytes per 1,024 tokens of context

  int64_t kvBytes(int64_t tokens) const { return kvBytesPer1kTokens / 1024 * tokens; }
};

struct ShardPlan {
  int tp = 1;
  int pp = 1;
  std::vector<RankPlan> ranks;  // ordered by worker index
  // Bytes one token adds to the all-reduces of one TP group per forward pass (two per layer, plus the embedding
  // where the vocabulary is split), summed over the stages.
  int64_t allReduceBytesPerToken = 0;
  int64_t allReducesPerToken = 0;       // how many all-reduces those bytes travel in, summed over the stages
  int64_t stageSendBytesPerToken = 0;   // hidden states sent from stage to stage per token, over all boundaries
  int64_t kvTokens = 0;                 // the KV cache each rank reserves (ClusterSpec::kvTokens), in tokens
  // The all-reduces sum f32 hidden vectors (worker/model_runner.cc): 4 bytes an element.
  static constexpr const char* kAllReduceDType = "f32";

  const RankPlan& rank(int stage, int tpRank) const { return ranks[size_t(stage * tp + tpRank)]; }
  int workers() const { return tp * pp; }
  IndexRange stageLayers(int stage) const { return rank(stage, 0).shard.layers; }
};

// Layers split into pp contiguous stages (in proportion to stageMemoryWeights); in every stage the same TP split:
// query heads as evenly as possible, each rank's kvHeads the contiguous KV heads its query heads read (so a KV head
// can live on two ranks), MLP columns and vocab rows in whole blocks of preferredBlock. Every shard passes
// validateRankShard. Throws phx::Error (invalid argument) naming the constraint a cluster cannot meet (e.g. more
// stages than layers, more ranks than query heads, a rank's weights + KV over rankMemoryBytes).
ShardPlan makeShardPlan(const ModelConfig& config, const ClusterSpec& spec);

}  // namespace phx
