// What one worker holds of the model, as plain data: a layer range (its pipeline stage) and, inside each of those
// layers, the query heads, KV heads, MLP columns and vocab rows of its tensor-parallel rank. The engine loads and
// runs exactly this, so a cluster only has to compute other shards; a layer never asks what rank it is.
#pragma once

#include <cstdint>
#include <string>

#include "model/config.h"

namespace phx {

// [begin, begin + count)
struct ShardRange {
  int64_t begin = 0;
  int64_t count = 0;

  int64_t end() const { return begin + count; }
  bool contains(int64_t index) const { return index >= begin && index < end(); }
  bool operator==(const ShardRange&) const = default;
};

struct RankShard {
  ShardRange layers;      // decoder layers of this pipeline stage
  ShardRange queryHeads;  // rows of q_proj (and columns of o_proj) this rank computes, in heads
  ShardRange kvHeads;     // the KV heads its query heads read (GQA groups); may overlap another rank's
  ShardRange mlpColumns;  // columns of the intermediate: rows of gate and of up, columns of down_proj
  ShardRange vocabRows;   // rows of embed_tokens and lm_head
  bool firstStage = true;  // holds the embedding (its vocab rows)
  bool lastStage = true;   // holds the final norm and lm_head (its vocab rows)
};

// The whole model on one rank.
RankShard wholeModelShard(const ModelConfig& config);

// Checks ranges against the config and that the KV heads cover every query head's group. Throws phx::Error
// (invalid argument) naming the field and what was expected.
void validateRankShard(const RankShard& shard, const ModelConfig& config);

// "layers [0, 4) q heads [0, 40) kv heads [0, 10) mlp [0, 17920) vocab [0, 100352)"
std::string describeRankShard(const RankShard& shard);

}  // namespace phx
