#include "partition/rank_shard.h"

#include "common/error.h"

namespace phx {
namespace {

std::string rangeText(const IndexRange& range) {
  return "[" + std::to_string(range.begin) + ", " + std::to_string(range.end()) + ")";
}

void requireWithin(const IndexRange& range, int64_t limit, const std::string& field, bool allowEmpty) {
  if (range.begin < 0 || range.count < 0 || range.end() > limit || (!allowEmpty && range.count == 0)) {
    throwInvalidArgument("rank shard: " + field + " " + rangeText(range) + " must be a " +
                         (allowEmpty ? "" : "non-empty ") + "range within [0, " + std::to_string(limit) + ")");
  }
}

}  // namespace

RankShard wholeModelShard(const ModelConfig& config) {
  RankShard shard;
  shard.layers = {0, config.numLayers};
  shard.queryHeads = {0, config.numHeads};
  shard.kvHeads = {0, config.numKvHeads};
  shard.mlpColumns = {0, config.intermediateSize};
  shard.vocabRows = {0, config.vocabSize};
  shard.firstStage = true;
  shard.lastStage = true;
  return shard;
}

void validateRankShard(const RankShard& shard, const ModelConfig& config) {
  requireWithin(shard.layers, config.numLayers, "layers", false);
  requireWithin(shard.queryHeads, config.numHeads, "queryHeads", false);
  requireWithin(shard.kvHeads, config.numKvHeads, "kvHeads", false);
  requireWithin(shard.mlpColumns, config.intermediateSize, "mlpColumns", false);
  requireWithin(shard.vocabRows, config.vocabSize, "vocabRows", !shard.firstStage && !shard.lastStage);
  if (config.numHeads % config.numKvHeads != 0) {
    throwInvalidArgument("rank shard: " + std::to_string(config.numHeads) + " query heads do not split into " +
                         std::to_string(config.numKvHeads) + " KV groups");
  }
  // Query head h reads KV head h / group: the first and last query heads bound the KV heads this rank needs.
  const int64_t group = config.numHeads / config.numKvHeads;
  const IndexRange needed{shard.queryHeads.begin / group,
                          (shard.queryHeads.end() - 1) / group - shard.queryHeads.begin / group + 1};
  if (needed.begin < shard.kvHeads.begin || needed.end() > shard.kvHeads.end()) {
    throwInvalidArgument("rank shard: kvHeads " + rangeText(shard.kvHeads) + " must cover " + rangeText(needed) +
                         ", the KV heads of queryHeads " + rangeText(shard.queryHeads));
  }
}

std::string describeRankShard(const RankShard& shard) {
  return "layers " + rangeText(shard.layers) + " q heads " + rangeText(shard.queryHeads) + " kv heads " +
         rangeText(shard.kvHeads) + " mlp " + rangeText(shard.mlpColumns) + " vocab " + rangeText(shard.vocabRows) +
         (shard.firstStage ? " +embedding" : "") + (shard.lastStage ? " +lm_head" : "");
}

}  // namespace phx
