// makeShardPlan: layers over stages, then within each stage query heads evenly, the KV heads those heads read,
// MLP columns and vocab rows in whole blocks. Every constraint is checked here, once, with a message naming it.
#include "partition/shard_plan.h"

#include <cstdio>

#include "common/error.h"
#include "partition/range_split.h"
#include "partition/shard_memory.h"

namespace phx {
namespace {

constexpr int64_t kF32Bytes = 4;

// Decimal units, one decimal: "9.1 GB", "12.9 MB".
std::string gigabytes(int64_t bytes) {
  const double value = double(bytes);
  char text[32];
  if (value >= 1e9) {
    std::snprintf(text, sizeof text, "%.1f GB", value / 1e9);
  } else if (value >= 1e6) {
    std::snprintf(text, sizeof text, "%.1f MB", value / 1e6);
  } else {
    std::snprintf(text, sizeof text, "%.1f KB", value / 1e3);
  }
  return text;
}

void requireValidSpec(const ModelConfig& c, const ClusterSpec& spec) {
  const std::string tp = std::to_string(spec.tp), pp = std::to_string(spec.pp);
  if (spec.tp < 1) throwInvalidArgument("shard plan: tp " + tp + " must be at least 1 (tensor-parallel ranks)");
  if (spec.tp > c.numHeads) {
    throwInvalidArgument("shard plan: tp " + tp + " is more than the model's " + std::to_string(c.numHeads) +
                         " query heads (num_attention_heads): every tensor rank needs at least one head");
  }
  if (spec.pp < 1) throwInvalidArgument("shard plan: pp " + pp + " must be at least 1 (pipeline stages)");
  if (spec.pp > c.numLayers) {
    throwInvalidArgument("shard plan: pp " + pp + " is more than the model's " + std::to_string(c.numLayers) +
                         " layers (num_hidden_layers): every pipeline stage needs at least one layer");
  }
  if (!spec.stageMemoryWeights.empty() && spec.stageMemoryWeights.size() != size_t(spec.pp)) {
    throwInvalidArgument("shard plan: " + std::to_string(spec.stageMemoryWeights.size()) +
                         " stage memory weights given for pp " + pp + " pipeline stages (one per stage expected)");
  }
  if (c.numKvHeads < 1 || c.numHeads % c.numKvHeads != 0) {
    throwInvalidArgument("shard plan: " + std::to_string(c.numHeads) + " query heads do not form groups over " +
                         std::to_string(c.numKvHeads) + " KV heads (num_key_value_heads)");
  }
  if (spec.rankMemoryBytes < 0) throwInvalidArgument("shard plan: rank memory budget must not be negative");
  if (spec.kvTokens < 0) throwInvalidArgument("shard plan: KV tokens must not be negative");
  if (spec.kvBytesPerElement < 1) throwInvalidArgument("shard plan: KV bytes per element must be at least 1");
  if (spec.preferredBlock < 1) throwInvalidArgument("shard plan: the split block must be at least 1");
}

// The KV heads query heads `q` read: query head h reads KV head h / group.
IndexRange kvHeadsFor(const IndexRange& q, int64_t group) {
  const int64_t first = q.begin / group, last = (q.end() - 1) / group;
  return {first, last - first + 1};
}

// Names the rank that needs the most (the one to fix first) and how many others are over too.
void requireWithinBudget(const ShardPlan& plan, const ClusterSpec& spec) {
  if (spec.rankMemoryBytes == 0) return;
  const RankPlan* worst = nullptr;
  int over = 0;
  for (const RankPlan& r : plan.ranks) {
    const int64_t needed = r.weightBytes + r.kvBytes(spec.kvTokens);
    if (needed <= spec.rankMemoryBytes) continue;
    ++over;
    if (!worst || needed > worst->weightBytes + worst->kvBytes(spec.kvTokens)) worst = &r;
  }
  if (!worst) return;
  const int64_t kv = worst->kvBytes(spec.kvTokens), needed = worst->weightBytes + kv;
  throwInvalidArgument("shard plan: rank " + std::to_string(worst->worker) + " (stage " +
                       std::to_string(worst->stage) + ", tp " + std::to_string(worst->tpRank) + ") needs " +
                       gigabytes(needed) + " for weights + KV, over its " + gigabytes(spec.rankMemoryBytes) +
                       " budget (weights " + gigabytes(worst->weightBytes) + ", KV cache " + gigabytes(kv) + " for " +
                       std::to_string(spec.kvTokens) + " tokens" +
                       (over > 1 ? "; " + std::to_string(over) + " of " + std::to_string(plan.workers()) +
                                       " ranks are over"
                                 : "") +
                       ")");
}

}  // namespace

ShardPlan makeShardPlan(const ModelConfig& c, const ClusterSpec& spec) {
  requireValidSpec(c, spec);
  const std::vector<double> stageWeights =
      spec.stageMemoryWeights.empty() ? std::vector<double>(size_t(spec.pp), 1.0) : spec.stageMemoryWeights;
  const std::vector<IndexRange> stages = splitByWeights(c.numLayers, stageWeights, "stage memory weights");
  const std::vector<IndexRange> heads = splitEvenly(c.numHeads, spec.tp, "query heads (num_attention_heads)");
  const std::vector<IndexRange> columns =
      splitInBlocks(c.intermediateSize, spec.tp, spec.preferredBlock, "MLP columns (intermediate_size)");
  const std::vector<IndexRange> vocab =
      splitInBlocks(c.vocabSize, spec.tp, spec.preferredBlock, "vocab rows (vocab_size)");
  const int64_t group = c.numHeads / c.numKvHeads;
  const bool vocabSplit = spec.tp > 1;

  ShardPlan plan;
  plan.tp = spec.tp;
  plan.pp = spec.pp;
  plan.kvTokens = spec.kvTokens;
  for (int stage = 0; stage < spec.pp; ++stage) {
    const bool first = stage == 0, last = stage == spec.pp - 1;
    for (int tpRank = 0; tpRank < spec.tp; ++tpRank) {
      RankPlan& r = plan.ranks.emplace_back();
      r.worker = stage * spec.tp + tpRank;
      r.stage = stage;
      r.tpRank = tpRank;
      r.shard.layers = stages[size_t(stage)];
      r.shard.queryHeads = heads[size_t(tpRank)];
      r.shard.kvHeads = kvHeadsFor(r.shard.queryHeads, group);
      r.shard.mlpColumns = columns[size_t(tpRank)];
      // A middle stage holds neither the embedding nor lm_head, so no vocab rows.
      r.shard.vocabRows = first || last ? vocab[size_t(tpRank)] : IndexRange{0, 0};
      r.shard.firstStage = first;
      r.shard.lastStage = last;
      validateRankShard(r.shard, c);
      r.weightBytes = shardWeightBytes(c, r.shard, spec.matrices);
      r.kvBytesPer1kTokens = 1024 * shardKvBytesPerToken(c, r.shard, spec.kvBytesPerElement);
    }
    // Per layer, o_proj's and down's partial sums; on the first stage the embedding of a split vocabulary. A
    // single rank all-reduces nothing.
    if (spec.tp > 1) {
      const int64_t reduces = 2 * stages[size_t(stage)].count + (first && vocabSplit ? 1 : 0);
      plan.allReducesPerToken += reduces;
      plan.allReduceBytesPerToken += reduces * c.hiddenSize * kF32Bytes;
    }
    if (!last) plan.stageSendBytesPerToken += c.hiddenSize * kF32Bytes;
  }
  requireWithinBudget(plan, spec);
  return plan;
}

}  // namespace phx
