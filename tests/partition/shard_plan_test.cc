// makeShardPlan on Phi-4's shape for every TP degree 1..40 and PP 1 and 2: every query head, MLP column, vocab
// row and layer lands on exactly one rank of its stage, each rank's KV heads are exactly those its query heads
// read, the ranks' weights add up to the model's plus what TP replicates, and the refusals name their constraint.
#include "partition/shard_plan.h"

#include <algorithm>
#include <cstdio>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "model/presets.h"
#include "partition/range_split.h"
#include "partition/shard_memory.h"
#include "partition/tensor_table.h"

namespace phx {
namespace {

using ::testing::HasSubstr;

const ModelConfig& phi4() { return findModelPreset("phi4").config; }

ClusterSpec cluster(int tp, int pp = 1, std::vector<double> stageWeights = {}) {
  ClusterSpec spec;
  spec.tp = tp;
  spec.pp = pp;
  spec.stageMemoryWeights = std::move(stageWeights);
  return spec;
}

// Ranges laid end to end from 0 must cover [0, total) with no gap or overlap.
void expectPartition(const std::vector<IndexRange>& ranges, int64_t total, const std::string& what) {
  int64_t next = 0;
  for (const IndexRange& range : ranges) {
    EXPECT_EQ(range.begin, next) << what;
    EXPECT_GT(range.count, 0) << what;
    next = range.end();
  }
  EXPECT_EQ(next, total) << what;
}

std::string gb(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f GB", double(bytes) / 1e9);
  return text;
}

class Phi4PlanTest : public ::testing::TestWithParam<int> {};

TEST_P(Phi4PlanTest, EveryTpPartitionsHeadsColumnsRowsAndLayers) {
  const ModelConfig& c = phi4();
  const int pp = GetParam();
  const int64_t group = c.numHeads / c.numKvHeads, hd = c.headDim(), hidden = c.hiddenSize;
  for (int tp = 1; tp <= c.numHeads; ++tp) {
    SCOPED_TRACE("tp " + std::to_string(tp) + ", pp " + std::to_string(pp));
    const ShardPlan plan = makeShardPlan(c, cluster(tp, pp));
    ASSERT_EQ(plan.ranks.size(), size_t(tp * pp));
    std::vector<IndexRange> stageLayers;
    int64_t weights = 0, replicated = 0;
    for (int stage = 0; stage < pp; ++stage) {
      std::vector<IndexRange> q, mlp, vocab;
      int64_t kvHeadsHeld = 0;
      for (int t = 0; t < tp; ++t) {
        const RankPlan& r = plan.rank(stage, t);
        const RankShard& s = r.shard;
        EXPECT_EQ(r.worker, stage * tp + t);
        EXPECT_EQ(r.stage, stage);
        EXPECT_EQ(r.tpRank, t);
        EXPECT_EQ(s.layers, plan.stageLayers(stage));
        EXPECT_EQ(s.firstStage, stage == 0);
        EXPECT_EQ(s.lastStage, stage == pp - 1);
        EXPECT_NO_THROW(validateRankShard(s, c));
        // Exactly the KV heads of its first and last query heads' groups, nothing more.
        EXPECT_EQ(s.kvHeads.begin, s.queryHeads.begin / group);
        EXPECT_EQ(s.kvHeads.end(), (s.queryHeads.end() - 1) / group + 1);
        q.push_back(s.queryHeads);
        mlp.push_back(s.mlpColumns);
        if (s.firstStage || s.lastStage) {
          vocab.push_back(s.vocabRows);
        } else {
          EXPECT_EQ(s.vocabRows.count, 0);
        }
        kvHeadsHeld += s.kvHeads.count;
        // Phi-4's blocks: 64-column multiples everywhere (17920 and 100352 are multiples of 64).
        EXPECT_EQ(s.mlpColumns.count % 64, 0);
        EXPECT_EQ(s.vocabRows.count % 64, 0);
        EXPECT_EQ(r.kvBytesPer1kTokens, 2 * s.kvHeads.count * hd * s.layers.count * 1024 * 2);
        weights += r.weightBytes;
      }
      expectPartition(q, c.numHeads, "query heads");
      expectPartition(mlp, c.intermediateSize, "MLP columns");
      if (!vocab.empty()) expectPartition(vocab, c.vocabSize, "vocab rows");
      // As even as the blocks allow: no rank more than one head or one block ahead of another.
      const auto [qMin, qMax] =
          std::minmax_element(q.begin(), q.end(), [](auto& a, auto& b) { return a.count < b.count; });
      EXPECT_LE(qMax->count - qMin->count, 1);
      const auto [mMin, mMax] =
          std::minmax_element(mlp.begin(), mlp.end(), [](auto& a, auto& b) { return a.count < b.count; });
      EXPECT_LE(mMax->count - mMin->count, 64);
      stageLayers.push_back(plan.stageLayers(stage));
      // What TP copies on every rank: both norms per layer (and the final norm), and the replicated KV heads'
      // rows of qkv (K and V).
      const int64_t layers = plan.stageLayers(stage).count;
      replicated += (tp - 1) * (2 * hidden * 4 * layers + (stage == pp - 1 ? hidden * 4 : 0));
      replicated += (kvHeadsHeld - c.numKvHeads) * 2 * hd * hidden * 2 * layers;
    }
    expectPartition(stageLayers, c.numLayers, "layers");
    EXPECT_EQ(weights - replicated, shardWeightBytes(c, wholeModelShard(c)));
    // f32 hidden vectors: two all-reduces a layer, plus the split embedding; none on one rank.
    const int64_t reduces = tp == 1 ? 0 : 2 * c.numLayers + 1;
    EXPECT_EQ(plan.allReducesPerToken, reduces);
    EXPECT_EQ(plan.allReduceBytesPerToken, reduces * hidden * 4);
    EXPECT_EQ(plan.stageSendBytesPerToken, (pp - 1) * hidden * 4);
  }
}

INSTANTIATE_TEST_SUITE_P(Stages, Phi4PlanTest, ::testing::Values(1, 2, 3));

TEST(ShardPlanTest, WholeModelWeighsWhatPhi4Weighs) {
  // Phi-4's BF16 checkpoint is 29.3 GB; norms are held as f32 (two per layer and the final one, 5120 each).
  const ModelConfig& c = phi4();
  const int64_t norms = (2 * c.numLayers + 1) * c.hiddenSize;
  EXPECT_EQ(shardWeightBytes(c, wholeModelShard(c)), parameterCount(c) * 2 + norms * 2);
}

TEST(ShardPlanTest, TpThreeReplicatesAKvHeadOnTwoRanks) {
  // 40 query heads over 3 ranks: 14 | 13 | 13. Query heads 12..15 read KV head 3, split across ranks 0 and 1.
  const ShardPlan plan = makeShardPlan(phi4(), cluster(3));
  EXPECT_EQ(plan.rank(0, 0).shard.queryHeads, (IndexRange{0, 14}));
  EXPECT_EQ(plan.rank(0, 1).shard.queryHeads, (IndexRange{14, 13}));
  EXPECT_EQ(plan.rank(0, 2).shard.queryHeads, (IndexRange{27, 13}));
  EXPECT_EQ(plan.rank(0, 0).shard.kvHeads, (IndexRange{0, 4}));
  EXPECT_EQ(plan.rank(0, 1).shard.kvHeads, (IndexRange{3, 4}));
  EXPECT_EQ(plan.rank(0, 2).shard.kvHeads, (IndexRange{6, 4}));
  // Boundaries at the 64-blocks nearest thirds: 280 MLP blocks 93 | 94 | 93, 1568 vocab blocks 523 | 522 | 523.
  EXPECT_EQ(plan.rank(0, 0).shard.mlpColumns, (IndexRange{0, 93 * 64}));
  EXPECT_EQ(plan.rank(0, 1).shard.mlpColumns, (IndexRange{93 * 64, 94 * 64}));
  EXPECT_EQ(plan.rank(0, 2).shard.vocabRows, (IndexRange{1045 * 64, 523 * 64}));
}

TEST(ShardPlanTest, TinyModelsSplitInSmallerBlocks) {
  const ModelConfig& tiny = findModelPreset("tiny").config;  // MLP 192: three 64-column blocks
  const ShardPlan plan = makeShardPlan(tiny, cluster(8));
  EXPECT_EQ(splitBlock(192, 8, 64), 16);
  for (const RankPlan& r : plan.ranks) {
    EXPECT_GE(r.shard.mlpColumns.count, 16);
    EXPECT_EQ(r.shard.mlpColumns.count % 16, 0);
  }
  // 100 over 3 in blocks of 32 (three 64-blocks would leave a rank empty): 32 | 32 | 36, not 64 | 32 | 4.
  const std::vector<IndexRange> partial = splitInBlocks(100, 3, 64, "x");
  expectPartition(partial, 100, "a partial last block");
  EXPECT_EQ(partial[1], (IndexRange{32, 32}));
  EXPECT_EQ(partial[2], (IndexRange{64, 36}));
}

TEST(ShardPlanTest, StageWeightsSplitLayersInProportion) {
  const ModelConfig& c = phi4();
  ShardPlan plan = makeShardPlan(c, cluster(2, 2, {1, 3}));
  EXPECT_EQ(plan.stageLayers(0), (IndexRange{0, 10}));
  EXPECT_EQ(plan.stageLayers(1), (IndexRange{10, 30}));
  plan = makeShardPlan(c, cluster(1, 3, {2, 1, 1}));
  EXPECT_EQ(plan.stageLayers(0), (IndexRange{0, 20}));
  EXPECT_EQ(plan.stageLayers(1), (IndexRange{20, 10}));
  EXPECT_EQ(plan.stageLayers(2), (IndexRange{30, 10}));
  EXPECT_EQ(plan.rank(1, 0).shard.vocabRows.count, 0);  // a middle stage: no embedding, no lm_head
  // A tiny stage still gets one layer.
  plan = makeShardPlan(findModelPreset("tiny").config, cluster(1, 2, {1, 1000}));
  EXPECT_EQ(plan.stageLayers(0), (IndexRange{0, 1}));
  EXPECT_EQ(plan.stageLayers(1), (IndexRange{1, 1}));
}

void expectRefused(const ClusterSpec& spec, const std::string& fragment) {
  try {
    makeShardPlan(phi4(), spec);
    ADD_FAILURE() << "accepted a plan that should fail with '" << fragment << "'";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kInvalidArgument);
    EXPECT_THAT(error.what(), HasSubstr(fragment));
  }
}

TEST(ShardPlanTest, RefusesWhatCannotWork) {
  expectRefused(cluster(0), "tp 0 must be at least 1");
  expectRefused(cluster(41), "tp 41 is more than the model's 40 query heads");
  expectRefused(cluster(1, 0), "pp 0 must be at least 1");
  expectRefused(cluster(1, 41), "pp 41 is more than the model's 40 layers");
  expectRefused(cluster(1, 2, {1, 2, 3}), "3 stage memory weights given for pp 2");
  expectRefused(cluster(1, 2, {1, -2}), "weight 1 is -2");
  ClusterSpec negativeKv = cluster(1);
  negativeKv.kvTokens = -1;
  expectRefused(negativeKv, "KV tokens must not be negative");
}

TEST(ShardPlanTest, RefusesARankOverItsMemoryNamingIt) {
  // The largest rank of TP 2 x PP 2 is on the last stage (lm_head packed and the final norm beside its layers).
  ClusterSpec spec = cluster(2, 2);
  spec.kvTokens = 8192;
  const ShardPlan unlimited = makeShardPlan(phi4(), spec);
  const RankPlan& largest = unlimited.rank(1, 0);
  const int64_t needed = largest.weightBytes + largest.kvBytes(8192);
  for (const RankPlan& r : unlimited.ranks) EXPECT_LE(r.weightBytes + r.kvBytes(8192), needed);

  spec.rankMemoryBytes = needed;  // exactly enough fits
  EXPECT_NO_THROW(makeShardPlan(phi4(), spec));
  spec.rankMemoryBytes = 7'000'000'000;
  ASSERT_GT(needed, spec.rankMemoryBytes);
  expectRefused(spec, "rank 2 (stage 1, tp 0) needs " + gb(needed) + " for weights + KV, over its 7.0 GB budget");
  spec.rankMemoryBytes = needed - 1;
  expectRefused(spec, "rank 2 (stage 1, tp 0) needs");
}

}  // namespace
}  // namespace phx
