// A shard plan as JSON, the form `phalanx plan --json` prints and the control plane can send: snake_case fields,
// ranges as [begin, end). Reading validates every field's type and every shard against the model config, so a
// worker never runs a plan it cannot hold; errors name the field.
//
// {"tp": 2, "pp": 1, "ranks": [{"worker": 0, "stage": 0, "tp_rank": 0, "layers": [0, 40], "q_heads": [0, 20],
//   "kv_heads": [0, 5], "mlp_columns": [0, 8960], "vocab_rows": [0, 50176], "first_stage": true,
//   "last_stage": true, "weight_bytes": ..., "kv_bytes_per_1k_tokens": ...}, ...],
//  "all_reduce_bytes_per_token": ..., "all_reduce_dtype": "f32", ...}
#pragma once

#include <nlohmann/json.hpp>

#include "model/config.h"
#include "partition/rank_shard.h"
#include "partition/shard_plan.h"

namespace phx {

nlohmann::json toJson(const RankShard& shard);
nlohmann::json toJson(const RankPlan& rank);  // the shard's fields and the rank's own
nlohmann::json toJson(const ShardPlan& plan);

// Throw phx::Error (invalid argument) naming the missing or mistyped field, or (with a config) the shard field
// out of range for that model.
RankShard rankShardFromJson(const nlohmann::json& json);
RankShard rankShardFromJson(const nlohmann::json& json, const ModelConfig& config);
ShardPlan shardPlanFromJson(const nlohmann::json& json);
ShardPlan shardPlanFromJson(const nlohmann::json& json, const ModelConfig& config);

}  // namespace phx
