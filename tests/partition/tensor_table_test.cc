// The tensor table against Phi-4's facts, written out here independently: 243 tensors in Hugging Face's order,
// the fused tensors re-split by segment for a rank, and the row-parallel (partial-sum) tensors exactly the two
// whose columns a rank slices.
#include "partition/tensor_table.h"

#include <gtest/gtest.h>

#include "model/presets.h"

namespace phx {
namespace {

const ModelConfig& phi4() {
  static const ModelConfig config = findModelPreset("phi4").config;
  return config;
}

TEST(TensorTableTest, ExpectedTensorsArePhi4sInCheckpointOrder) {
  const std::vector<TensorSpec> specs = expectedTensors(phi4());
  ASSERT_EQ(specs.size(), 1u + 40 * 6 + 2);
  EXPECT_EQ(specs[0].name, "model.embed_tokens.weight");
  EXPECT_EQ(specs[0].shape, (std::vector<int64_t>{100352, 5120}));
  EXPECT_EQ(specs[1].name, "model.layers.0.input_layernorm.weight");
  EXPECT_EQ(specs[1].shape, (std::vector<int64_t>{5120}));
  EXPECT_EQ(specs[2].name, "model.layers.0.self_attn.qkv_proj.weight");
  EXPECT_EQ(specs[2].shape, (std::vector<int64_t>{40 * 128 + 2 * 10 * 128, 5120}));
  EXPECT_EQ(specs[3].shape, (std::vector<int64_t>{5120, 5120}));       // o_proj
  EXPECT_EQ(specs[5].shape, (std::vector<int64_t>{2 * 17920, 5120}));  // gate_up
  EXPECT_EQ(specs[6].shape, (std::vector<int64_t>{5120, 17920}));      // down
  EXPECT_EQ(specs[240].name, "model.layers.39.mlp.down_proj.weight");
  EXPECT_EQ(specs[241].name, "model.norm.weight");
  EXPECT_EQ(specs[242].name, "lm_head.weight");
  EXPECT_EQ(specs[242].shape, (std::vector<int64_t>{100352, 5120}));
}

TEST(TensorTableTest, ARankTakesItsHeadsAndColumnsOfTheFusedTensors) {
  RankShard shard = wholeModelShard(phi4());
  shard.layers = {4, 2};
  shard.queryHeads = {20, 20};  // the second of two ranks: q heads 20..39 read KV heads 5..9
  shard.kvHeads = {5, 5};
  shard.mlpColumns = {8960, 8960};
  shard.firstStage = false;
  const TensorSlice qkv = tensorSlice(phi4(), shard, TensorRole::kQkv, 5);
  EXPECT_EQ(qkv.name, "model.layers.5.self_attn.qkv_proj.weight");
  EXPECT_EQ(qkv.axis, SliceAxis::kRows);
  EXPECT_EQ(qkv.segments, (std::vector<IndexRange>{{2560, 2560}, {5120 + 640, 640}, {5120 + 1280 + 640, 640}}));
  EXPECT_EQ(qkv.rows, 2560 + 2 * 640);
  EXPECT_EQ(qkv.cols, 5120);
  const TensorSlice gateUp = tensorSlice(phi4(), shard, TensorRole::kGateUp, 5);
  EXPECT_EQ(gateUp.segments, (std::vector<IndexRange>{{8960, 8960}, {17920 + 8960, 8960}}));
  const TensorSlice down = tensorSlice(phi4(), shard, TensorRole::kDown, 5);
  EXPECT_EQ(down.axis, SliceAxis::kColumns);
  EXPECT_EQ(down.rows, 5120);
  EXPECT_EQ(down.cols, 8960);
  EXPECT_FALSE(down.wholeRows());
  // Two layers of six tensors, then the final norm and lm_head: no embedding off the first stage.
  const std::vector<TensorSlice> slices = shardTensorSlices(phi4(), shard);
  ASSERT_EQ(slices.size(), 2u * 6 + 2);
  EXPECT_EQ(slices.front().name, "model.layers.4.input_layernorm.weight");
  EXPECT_EQ(slices.back().name, "lm_head.weight");
}

TEST(TensorTableTest, OnlyColumnSlicedTensorsArePartialSums) {
  for (const TensorSlice& slice : shardTensorSlices(phi4(), wholeModelShard(phi4()))) {
    const bool rowParallel = slice.name.ends_with("o_proj.weight") || slice.name.ends_with("down_proj.weight");
    EXPECT_EQ(slice.partialSum, rowParallel) << slice.name;
    EXPECT_EQ(slice.axis == SliceAxis::kColumns, rowParallel) << slice.name;
  }
}

TEST(TensorTableTest, ResidentBytesFollowEachTensorsForm) {
  const RankShard whole = wholeModelShard(phi4());
  EXPECT_EQ(residentBytes(tensorSlice(phi4(), whole, TensorRole::kInputNorm, 0), WeightType::kInt8), 5120 * 4);
  EXPECT_EQ(residentBytes(tensorSlice(phi4(), whole, TensorRole::kEmbedding), WeightType::kInt8),
            int64_t(100352) * 5120 * 2);
  EXPECT_EQ(residentBytes(tensorSlice(phi4(), whole, TensorRole::kDown, 0), WeightType::kInt8),
            int64_t(5120) * (17920 + 8));
  EXPECT_EQ(parameterCount(phi4()), 14'659'507'200);
}

}  // namespace
}  // namespace phx
