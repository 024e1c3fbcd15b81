// A rank's weights hold exactly the slices its shard names: every packed element equals the element of the full
// tensor it stands for (read independently with copyTensor), pieces included, and the loader reads no byte outside
// the shard.
#include "worker/shard_weights.h"

#include <random>

#include <gtest/gtest.h>

#include "common/error.h"
#include "model/bf16.h"
#include "tests/common/test_files.h"

namespace phx {
namespace {

const std::filesystem::path kTiny = ::phx::testing::testModelDir("tiny");
const std::filesystem::path kSmall = ::phx::testing::testModelDir("small");

std::vector<uint16_t> wholeTensor(const Checkpoint& checkpoint, const std::string& name) {
  std::vector<uint16_t> values(size_t(checkpoint.info(name).elementCount()));
  checkpoint.copyTensor(name, {reinterpret_cast<std::byte*>(values.data()), values.size() * 2});
  return values;
}

float packedAt(const PackedMatrix& m, int64_t row, int64_t col) {
  for (size_t p = m.pieces.size(); p-- > 0;) {
    if (row >= m.firstRow[p]) return m.pieces[p].at(row - m.firstRow[p], col);
  }
  ADD_FAILURE() << "row " << row << " in no piece";
  return 0;
}

// Checks `samples` random elements of `packed` against full[sourceRow(r)][sourceCol(c)].
template <typename RowMap, typename ColMap>
void expectSlice(const PackedMatrix& packed, const std::vector<uint16_t>& full, int64_t fullCols, RowMap sourceRow,
                 ColMap sourceCol, const std::string& what) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    const int64_t r = std::uniform_int_distribution<int64_t>(0, packed.rows - 1)(rng);
    const int64_t c = std::uniform_int_distribution<int64_t>(0, packed.cols - 1)(rng);
    ASSERT_EQ(packedAt(packed, r, c), bf16ToFloat(full[size_t(sourceRow(r) * fullCols + sourceCol(c))]))
        << what << " at (" << r << ", " << c << ")";
  }
}

TEST(ShardWeightsTest, PartialShardHoldsItsHeadsColumnsAndVocabRows) {
  const auto checkpoint = Checkpoint::open(kTiny);
  const ModelConfig& c = checkpoint->config();  // 8 q heads, 2 KV heads of dim 8, MLP 192
  RankShard shard = wholeModelShard(c);
  shard.layers = {1, 1};
  shard.queryHeads = {2, 4};  // q heads 2..5 read KV heads 0 and 1 (4 query heads per KV head)
  shard.kvHeads = {0, 2};
  shard.mlpColumns = {64, 64};
  shard.vocabRows = {1000, 2000};
  const uint64_t before = checkpoint->bytesRead();
  const ShardWeights w = loadShardWeights(*checkpoint, shard);
  int64_t sliceBytes = 0;
  for (const TensorSlice& slice : shardTensorSlices(c, shard)) sliceBytes += slice.rows * slice.cols * 2;
  EXPECT_EQ(int64_t(checkpoint->bytesRead() - before), sliceBytes) << "read outside the shard";

  ASSERT_EQ(w.layers.size(), 1u);
  const LayerWeights& layer = w.layers[0];
  const int64_t hd = 8, hidden = 64;
  const auto qkv = wholeTensor(*checkpoint, "model.layers.1.self_attn.qkv_proj.weight");
  // local rows: q heads 2..5 (rows 16..47), then K heads 0..1 (rows 64..79), then V heads 0..1 (rows 80..95)
  const auto qkvRow = [](int64_t r) { return r < 32 ? 16 + r : r < 48 ? 64 + (r - 32) : 80 + (r - 48); };
  expectSlice(layer.qkv, qkv, hidden, qkvRow, [](int64_t col) { return col; }, "qkv");
  const auto oProj = wholeTensor(*checkpoint, "model.layers.1.self_attn.o_proj.weight");
  expectSlice(layer.oProj, oProj, hidden, [](int64_t r) { return r; }, [&](int64_t col) { return 2 * hd + col; },
              "o_proj");
  const auto gateUp = wholeTensor(*checkpoint, "model.layers.1.mlp.gate_up_proj.weight");
  expectSlice(layer.gateUp, gateUp, hidden, [](int64_t r) { return r < 64 ? 64 + r : 192 + 64 + (r - 64); },
              [](int64_t col) { return col; }, "gate_up");
  const auto down = wholeTensor(*checkpoint, "model.layers.1.mlp.down_proj.weight");
  expectSlice(layer.down, down, 192, [](int64_t r) { return r; }, [](int64_t col) { return 64 + col; }, "down");
  const auto lmHead = wholeTensor(*checkpoint, "lm_head.weight");
  expectSlice(w.lmHead, lmHead, hidden, [](int64_t r) { return 1000 + r; }, [](int64_t col) { return col; },
              "lm_head");
  const auto embedding = wholeTensor(*checkpoint, "model.embed_tokens.weight");
  ASSERT_EQ(w.embedding.size(), size_t(2000 * hidden));
  for (size_t i = 0; i < w.embedding.size(); i += 97) EXPECT_EQ(w.embedding[i], embedding[1000 * hidden + i]);
}

// small's lm_head (100352 x 1024 BF16, 205 MB) is packed in 64 MiB pieces: rows on both sides of each boundary.
TEST(ShardWeightsTest, LargeMatricesArePackedInPiecesThatJoinExactly) {
  const auto checkpoint = Checkpoint::open(kSmall);
  const ShardWeights w = loadShardWeights(*checkpoint, wholeModelShard(checkpoint->config()));
  const int64_t loaded = int64_t(checkpoint->bytesRead());
  ASSERT_GT(w.lmHead.pieces.size(), 1u);
  const auto lmHead = wholeTensor(*checkpoint, "lm_head.weight");
  for (size_t p = 1; p < w.lmHead.pieces.size(); ++p) {
    for (int64_t row : {w.lmHead.firstRow[p] - 1, w.lmHead.firstRow[p]}) {
      for (int64_t col : {int64_t(0), int64_t(511), int64_t(1023)}) {
        EXPECT_EQ(packedAt(w.lmHead, row, col), bf16ToFloat(lmHead[size_t(row * 1024 + col)]));
      }
    }
  }
  expectSlice(w.lmHead, lmHead, 1024, [](int64_t r) { return r; }, [](int64_t col) { return col; }, "lm_head");
  // The packed model is the checkpoint's size: BF16 stays BF16; only the 9 norm vectors widen to f32.
  EXPECT_EQ(w.bytes, loaded + int64_t(2 * 4 + 1) * 1024 * 2);
}

TEST(ShardWeightsTest, RejectsAShardThatDoesNotFitTheModel) {
  const auto checkpoint = Checkpoint::open(kTiny);
  RankShard shard = wholeModelShard(checkpoint->config());
  shard.queryHeads = {4, 4};
  shard.kvHeads = {0, 1};  // q heads 4..7 need KV head 1
  EXPECT_THROW(loadShardWeights(*checkpoint, shard), Error);
}

}  // namespace
}  // namespace phx
