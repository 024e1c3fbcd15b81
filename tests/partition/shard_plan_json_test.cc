// A shard plan survives JSON unchanged, and reading a damaged one fails with the field named: the control plane
// sends plans this way, so a worker must refuse a plan it cannot hold rather than run part of one.
#include "partition/shard_plan_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "model/presets.h"

namespace phx {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const ModelConfig& phi4() { return findModelPreset("phi4").config; }

ShardPlan planOf(int tp, int pp) {
  ClusterSpec spec;
  spec.tp = tp;
  spec.pp = pp;
  return makeShardPlan(phi4(), spec);
}

void expectSamePlan(const ShardPlan& a, const ShardPlan& b) {
  EXPECT_EQ(a.tp, b.tp);
  EXPECT_EQ(a.pp, b.pp);
  EXPECT_EQ(a.allReduceBytesPerToken, b.allReduceBytesPerToken);
  EXPECT_EQ(a.allReducesPerToken, b.allReducesPerToken);
  EXPECT_EQ(a.stageSendBytesPerToken, b.stageSendBytesPerToken);
  EXPECT_EQ(a.kvTokens, b.kvTokens);
  ASSERT_EQ(a.ranks.size(), b.ranks.size());
  for (size_t i = 0; i < a.ranks.size(); ++i) {
    const RankPlan &x = a.ranks[i], &y = b.ranks[i];
    EXPECT_EQ(x.worker, y.worker);
    EXPECT_EQ(x.stage, y.stage);
    EXPECT_EQ(x.tpRank, y.tpRank);
    EXPECT_EQ(x.shard.layers, y.shard.layers);
    EXPECT_EQ(x.shard.queryHeads, y.shard.queryHeads);
    EXPECT_EQ(x.shard.kvHeads, y.shard.kvHeads);
    EXPECT_EQ(x.shard.mlpColumns, y.shard.mlpColumns);
    EXPECT_EQ(x.shard.vocabRows, y.shard.vocabRows);
    EXPECT_EQ(x.shard.firstStage, y.shard.firstStage);
    EXPECT_EQ(x.shard.lastStage, y.shard.lastStage);
    EXPECT_EQ(x.weightBytes, y.weightBytes);
    EXPECT_EQ(x.kvBytesPer1kTokens, y.kvBytesPer1kTokens);
  }
}

TEST(ShardPlanJsonTest, RoundTripsThroughText) {
  for (const auto& [tp, pp] : {std::pair{1, 1}, {3, 1}, {2, 2}, {8, 3}}) {
    const ShardPlan plan = planOf(tp, pp);
    const json parsed = json::parse(toJson(plan).dump());
    expectSamePlan(shardPlanFromJson(parsed, phi4()), plan);
  }
}

TEST(ShardPlanJsonTest, UsesSnakeCaseFieldsAndHalfOpenRanges) {
  const json j = toJson(planOf(3, 1));
  EXPECT_EQ(j["tp"], 3);
  EXPECT_EQ(j["pp"], 1);
  EXPECT_EQ(j["all_reduce_dtype"], "f32");
  EXPECT_EQ(j["total_kv_bytes_per_1k_tokens"], 3 * 2 * 4 * 128 * 40 * 1024 * 2);  // 4 KV heads on each rank
  const json& rank1 = j["ranks"][1];
  EXPECT_EQ(rank1["worker"], 1);
  EXPECT_EQ(rank1["tp_rank"], 1);
  EXPECT_EQ(rank1["q_heads"], json::array({14, 27}));
  EXPECT_EQ(rank1["kv_heads"], json::array({3, 7}));
  EXPECT_EQ(rank1["layers"], json::array({0, 40}));
  EXPECT_TRUE(rank1["first_stage"].get<bool>());
  EXPECT_GT(rank1["weight_bytes"].get<int64_t>(), 0);
  EXPECT_GT(rank1["kv_bytes_per_1k_tokens"].get<int64_t>(), 0);
  const RankShard shard = rankShardFromJson(toJson(planOf(3, 1).rank(0, 1).shard), phi4());
  EXPECT_EQ(shard.kvHeads, (IndexRange{3, 4}));
}

void expectRejected(const json& j, const std::string& fragment) {
  try {
    shardPlanFromJson(j, phi4());
    ADD_FAILURE() << "accepted a plan that should fail with '" << fragment << "'";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kInvalidArgument);
    EXPECT_THAT(error.what(), HasSubstr(fragment));
  }
}

TEST(ShardPlanJsonTest, RejectsDamagedPlansNamingTheField) {
  const json good = toJson(planOf(2, 2));
  json j = good;
  j["ranks"][1].erase("kv_heads");
  expectRejected(j, "ranks[1]: missing field \"kv_heads\"");
  j = good;
  j["ranks"][0]["q_heads"] = json::array({5, 2});
  expectRejected(j, "ranks[0]: field \"q_heads\" must be [begin, end)");
  j = good;
  j["ranks"][3]["first_stage"] = 1;
  expectRejected(j, "field \"first_stage\" must be true or false");
  j = good;
  j["tp"] = "2";
  expectRejected(j, "field \"tp\" must be an integer");
  j = good;
  j["ranks"].erase(3);
  expectRejected(j, "must be an array of tp * pp = 4 ranks, got 3");
  j = good;
  std::swap(j["ranks"][0], j["ranks"][1]);
  expectRejected(j, "ranks[0]: worker 1, stage 0, tp_rank 1 out of order");
  j = good;
  j["ranks"][2]["kv_heads"] = json::array({0, 1});  // rank 2 holds q heads 0..19: KV heads 0..4
  expectRejected(j, "worker 2: rank shard: kvHeads [0, 1) must cover [0, 5)");
  j = good;
  j["ranks"][0]["mlp_columns"] = json::array({0, 20000});
  expectRejected(j, "mlpColumns [0, 20000) must be a non-empty range within [0, 17920)");
  expectRejected(json::array(), "shard plan: expected a JSON object");
}

}  // namespace
}  // namespace phx
