// A plan's weightBytes is what the worker really holds: every rank of several plans is loaded from the generated
// checkpoints with loadShardWeights (the worker's loader) and its ShardWeights::bytes compared, so the plan's
// memory model cannot drift from the loader's packing (padding of rows and columns included).
#include "partition/shard_memory.h"

#include <gtest/gtest.h>

#include "model/checkpoint.h"
#include "partition/shard_plan.h"
#include "tests/common/test_files.h"
#include "worker/shard_weights.h"

namespace phx {
namespace {

void expectPlannedBytesAreLoadedBytes(const std::string& preset, int tp, int pp,
                                      WeightType matrices = WeightType::kBf16) {
  const auto checkpoint = Checkpoint::open(::phx::testing::testModelDir(preset));
  ClusterSpec spec;
  spec.tp = tp;
  spec.pp = pp;
  spec.matrices = matrices;
  const ShardPlan plan = makeShardPlan(checkpoint->config(), spec);
  for (const RankPlan& rank : plan.ranks) {
    const ShardWeights weights = loadShardWeights(*checkpoint, rank.shard, nullptr, matrices);
    EXPECT_EQ(rank.weightBytes, weights.bytes)
        << preset << " tp " << tp << " pp " << pp << " " << weightTypeName(matrices) << " worker " << rank.worker
        << ": " << describeRankShard(rank.shard);
  }
}

TEST(ShardMemoryTest, TinyPlansWeighWhatTheLoaderHolds) {
  // tiny: head dim 8 and MLP 192, so qkv rows, o_proj columns and small-block MLP splits all carry padding.
  for (const auto& [tp, pp] : {std::pair{1, 1}, {2, 1}, {3, 1}, {5, 1}, {8, 1}, {2, 2}, {3, 2}}) {
    expectPlannedBytesAreLoadedBytes("tiny", tp, pp);
  }
}

TEST(ShardMemoryTest, Int8PlansWeighWhatTheLoaderHolds) {
  for (const auto& [tp, pp] : {std::pair{1, 1}, {3, 1}, {2, 2}}) {
    expectPlannedBytesAreLoadedBytes("tiny", tp, pp, WeightType::kInt8);
  }
  expectPlannedBytesAreLoadedBytes("small", 2, 1, WeightType::kInt8);
}

TEST(ShardMemoryTest, SmallPlanWeighsWhatTheLoaderHolds) {
  expectPlannedBytesAreLoadedBytes("small", 3, 2);
}

TEST(ShardMemoryTest, PackedBytesPadRowsTo64AndColumnsTo16) {
  EXPECT_EQ(packedMatrixBytes(64, 16, WeightType::kBf16), 64 * 16 * 2);
  EXPECT_EQ(packedMatrixBytes(65, 16, WeightType::kBf16), 128 * 16 * 2);
  EXPECT_EQ(packedMatrixBytes(64, 17, WeightType::kBf16), 64 * 32 * 2);
  EXPECT_EQ(packedMatrixBytes(0, 16, WeightType::kBf16), 0);
  // INT8: one byte an element, plus a scale and a row sum (4 bytes each) per padded row.
  EXPECT_EQ(packedMatrixBytes(65, 17, WeightType::kInt8), 128 * (32 + 8));
}

}  // namespace
}  // namespace phx
