#include "partition/rank_shard.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "model/presets.h"

namespace phx {
namespace {

const ModelConfig& phi4() { return findModelPreset("phi4").config; }

TEST(RankShardTest, WholeModelCoversEverything) {
  const RankShard shard = wholeModelShard(phi4());
  EXPECT_EQ(shard.layers, (IndexRange{0, 40}));
  EXPECT_EQ(shard.queryHeads, (IndexRange{0, 40}));
  EXPECT_EQ(shard.kvHeads, (IndexRange{0, 10}));
  EXPECT_EQ(shard.mlpColumns, (IndexRange{0, 17920}));
  EXPECT_EQ(shard.vocabRows, (IndexRange{0, 100352}));
  EXPECT_NO_THROW(validateRankShard(shard, phi4()));
}

TEST(RankShardTest, AcceptsAPartialShardWhoseKvHeadsCoverItsQueryHeads) {
  RankShard shard = wholeModelShard(phi4());
  shard.layers = {20, 20};
  shard.queryHeads = {6, 9};  // q heads 6..14 read KV heads 1..3 (4 query heads per KV head)
  shard.kvHeads = {1, 3};
  shard.mlpColumns = {1024, 4096};
  shard.vocabRows = {50000, 50352};
  shard.firstStage = false;
  EXPECT_NO_THROW(validateRankShard(shard, phi4()));
}

void expectRejected(const RankShard& shard, const std::string& fragment) {
  try {
    validateRankShard(shard, phi4());
    ADD_FAILURE() << "accepted a shard that should fail with '" << fragment << "'";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
  }
}

TEST(RankShardTest, RejectsRangesOutsideTheModelOrMissingKvHeads) {
  RankShard shard = wholeModelShard(phi4());
  shard.layers = {38, 3};
  expectRejected(shard, "layers [38, 41)");
  shard = wholeModelShard(phi4());
  shard.queryHeads = {0, 0};
  expectRejected(shard, "queryHeads [0, 0) must be a non-empty range");
  shard = wholeModelShard(phi4());
  shard.queryHeads = {6, 9};
  shard.kvHeads = {2, 2};
  expectRejected(shard, "kvHeads [2, 4) must cover [1, 4)");
  shard = wholeModelShard(phi4());
  shard.mlpColumns = {-1, 5};
  expectRejected(shard, "mlpColumns");
}

TEST(RankShardTest, DescribesItself) {
  EXPECT_EQ(describeRankShard(wholeModelShard(findModelPreset("tiny").config)),
            "layers [0, 2) q heads [0, 8) kv heads [0, 2) mlp [0, 192) vocab [0, 100352) +embedding +lm_head");
}

}  // namespace
}  // namespace phx
