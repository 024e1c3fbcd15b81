// What one worker holds of the model, as plain data: a layer range (its pipeline stage) and, inside each of those
// layers, the query heads, KV heads, MLP columns and vocab rows of its tensor-parallel rank. The engine loads and
// runs exactly this, so a cluster only has to compute other shards; a layer never asks what rank it is.
#pragma once

#include <cstdint>
#include <string>

#include "common/index_range.h"
#include "model/config.h"

namespace phx {

struct RankShard {
  IndexRange layers;      // decoder layers of this pipeline stage
  IndexRange queryHeads;  // rows of q_proj (and columns of o_proj) this rank computes, in heads
  IndexRange kvHeads;     // the KV heads its query heads read (GQA groups); may overlap another rank's
  IndexRange mlpColumns;  // columns of the intermediate: rows of gate and of up, columns of down_proj
  IndexRange vocabRows;   // rows of embed_tokens and lm_head
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
