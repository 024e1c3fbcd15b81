#include "partition/shard_plan_json.h"

#include "common/error.h"

namespace phx {
namespace {

using nlohmann::json;

json rangeJson(const IndexRange& range) { return json::array({range.begin, range.end()}); }

const json& field(const json& object, const std::string& name, const std::string& where) {
  if (!object.is_object()) throwInvalidArgument(where + ": expected a JSON object, got " + object.dump());
  const auto it = object.find(name);
  if (it == object.end()) throwInvalidArgument(where + ": missing field \"" + name + "\"");
  return *it;
}

int64_t integerField(const json& object, const std::string& name, const std::string& where) {
  const json& value = field(object, name, where);
  if (!value.is_number_integer()) {
    throwInvalidArgument(where + ": field \"" + name + "\" must be an integer, got " + value.dump());
  }
  return value.get<int64_t>();
}

// A field added after the first version: absent means not stated (0).
int64_t optionalIntegerField(const json& object, const std::string& name, const std::string& where) {
  return object.is_object() && object.contains(name) ? integerField(object, name, where) : 0;
}

bool boolField(const json& object, const std::string& name, const std::string& where) {
  const json& value = field(object, name, where);
  if (!value.is_boolean()) {
    throwInvalidArgument(where + ": field \"" + name + "\" must be true or false, got " + value.dump());
  }
  return value.get<bool>();
}

IndexRange rangeField(const json& object, const std::string& name, const std::string& where) {
  const json& value = field(object, name, where);
  if (!value.is_array() || value.size() != 2 || !value[0].is_number_integer() || !value[1].is_number_integer() ||
      value[1].get<int64_t>() < value[0].get<int64_t>()) {
    throwInvalidArgument(where + ": field \"" + name +
                         "\" must be [begin, end) as two integers with begin <= end, got " + value.dump());
  }
  const int64_t begin = value[0].get<int64_t>();
  return {begin, value[1].get<int64_t>() - begin};
}

RankShard shardFrom(const json& j, const std::string& where) {
  RankShard shard;
  shard.layers = rangeField(j, "layers", where);
  shard.queryHeads = rangeField(j, "q_heads", where);
  shard.kvHeads = rangeField(j, "kv_heads", where);
  shard.mlpColumns = rangeField(j, "mlp_columns", where);
  shard.vocabRows = rangeField(j, "vocab_rows", where);
  shard.firstStage = boolField(j, "first_stage", where);
  shard.lastStage = boolField(j, "last_stage", where);
  return shard;
}

}  // namespace

json toJson(const RankShard& shard) {
  return json{{"layers", rangeJson(shard.layers)},         {"q_heads", rangeJson(shard.queryHeads)},
              {"kv_heads", rangeJson(shard.kvHeads)},      {"mlp_columns", rangeJson(shard.mlpColumns)},
              {"vocab_rows", rangeJson(shard.vocabRows)},  {"first_stage", shard.firstStage},
              {"last_stage", shard.lastStage}};
}

json toJson(const RankPlan& rank) {
  json out = toJson(rank.shard);
  out["worker"] = rank.worker;
  out["stage"] = rank.stage;
  out["tp_rank"] = rank.tpRank;
  out["weight_bytes"] = rank.weightBytes;
  out["kv_bytes_per_1k_tokens"] = rank.kvBytesPer1kTokens;
  return out;
}

json toJson(const ShardPlan& plan) {
  json ranks = json::array();
  int64_t weightBytes = 0, kvBytesPer1k = 0;
  for (const RankPlan& rank : plan.ranks) {
    ranks.push_back(toJson(rank));
    weightBytes += rank.weightBytes;
    kvBytesPer1k += rank.kvBytesPer1kTokens;
  }
  // The totals are for readers (`phalanx plan --json`); shardPlanFromJson ignores them.
  return json{{"tp", plan.tp},
              {"pp", plan.pp},
              {"ranks", ranks},
              {"total_weight_bytes", weightBytes},
              {"total_kv_bytes_per_1k_tokens", kvBytesPer1k},
              {"all_reduce_bytes_per_token", plan.allReduceBytesPerToken},
              {"all_reduces_per_token", plan.allReducesPerToken},
              {"all_reduce_dtype", ShardPlan::kAllReduceDType},
              {"stage_send_bytes_per_token", plan.stageSendBytesPerToken},
              {"kv_tokens", plan.kvTokens}};
}

RankShard rankShardFromJson(const json& j) { return shardFrom(j, "rank shard"); }

RankShard rankShardFromJson(const json& j, const ModelConfig& config) {
  RankShard shard = rankShardFromJson(j);
  validateRankShard(shard, config);
  return shard;
}

ShardPlan shardPlanFromJson(const json& j) {
  ShardPlan plan;
  plan.tp = int(integerField(j, "tp", "shard plan"));
  plan.pp = int(integerField(j, "pp", "shard plan"));
  plan.allReduceBytesPerToken = integerField(j, "all_reduce_bytes_per_token", "shard plan");
  plan.allReducesPerToken = optionalIntegerField(j, "all_reduces_per_token", "shard plan");
  plan.stageSendBytesPerToken = optionalIntegerField(j, "stage_send_bytes_per_token", "shard plan");
  plan.kvTokens = optionalIntegerField(j, "kv_tokens", "shard plan");
  if (plan.tp < 1 || plan.pp < 1) {
    throwInvalidArgument("shard plan: tp " + std::to_string(plan.tp) + " and pp " + std::to_string(plan.pp) +
                         " must both be at least 1");
  }
  const json& ranks = field(j, "ranks", "shard plan");
  if (!ranks.is_array() || ranks.size() != size_t(plan.tp) * size_t(plan.pp)) {
    throwInvalidArgument("shard plan: \"ranks\" must be an array of tp * pp = " + std::to_string(plan.tp * plan.pp) +
                         " ranks, got " + (ranks.is_array() ? std::to_string(ranks.size()) : ranks.dump()));
  }
  for (size_t i = 0; i < ranks.size(); ++i) {
    const std::string where = "shard plan: ranks[" + std::to_string(i) + "]";
    RankPlan& rank = plan.ranks.emplace_back();
    rank.worker = int(integerField(ranks[i], "worker", where));
    rank.stage = int(integerField(ranks[i], "stage", where));
    rank.tpRank = int(integerField(ranks[i], "tp_rank", where));
    rank.shard = shardFrom(ranks[i], where);
    rank.weightBytes = integerField(ranks[i], "weight_bytes", where);
    rank.kvBytesPer1kTokens = integerField(ranks[i], "kv_bytes_per_1k_tokens", where);
    // ranks are ordered by worker index (ShardPlan::rank relies on it).
    if (rank.worker != int(i) || rank.stage != int(i) / plan.tp || rank.tpRank != int(i) % plan.tp) {
      throwInvalidArgument(where + ": worker " + std::to_string(rank.worker) + ", stage " +
                           std::to_string(rank.stage) + ", tp_rank " + std::to_string(rank.tpRank) +
                           " out of order: expected worker " + std::to_string(i) + " = stage " +
                           std::to_string(int(i) / plan.tp) + " * tp + tp_rank " + std::to_string(int(i) % plan.tp));
    }
  }
  return plan;
}

ShardPlan shardPlanFromJson(const json& j, const ModelConfig& config) {
  ShardPlan plan = shardPlanFromJson(j);
  for (const RankPlan& rank : plan.ranks) {
    try {
      validateRankShard(rank.shard, config);
    } catch (const Error& error) {
      throwInvalidArgument("shard plan: worker " + std::to_string(rank.worker) + ": " + error.what());
    }
  }
  return plan;
}

}  // namespace phx
