// What a RankShard costs in memory, computed from the config alone (no checkpoint, no kernels): the bytes the
// worker's loader (worker/shard_weights.cc) will hold for its weights, and its KV cache per token. A plan checks
// these against each rank's budget before any worker reads a byte; tests/partition compares shardWeightBytes with
// what loadShardWeights really holds.
#pragma once

#include <cstdint>

#include "common/weight_type.h"
#include "model/config.h"
#include "partition/rank_shard.h"

namespace phx {

// Resident weight bytes of one shard: residentBytes of each of its tensor slices (partition/tensor_table.h), the
// matrices packed as `matrices` (BF16, or INT8 with `--dtype int8`).
int64_t shardWeightBytes(const ModelConfig& config, const RankShard& shard, WeightType matrices = WeightType::kBf16);

// KV cache bytes one token of context costs the shard: K and V of its KV heads in each of its layers.
int64_t shardKvBytesPerToken(const ModelConfig& config, const RankShard& shard, int64_t bytesPerElement);

}  // namespace phx
