// `phalanx plan` as a user runs it: the real binary on the generated tiny model. The table and the JSON carry
// the plan makeShardPlan computes in this process; a plan the model or the budget cannot meet exits 1 naming the
// constraint; a malformed command line exits 2 (also under AddressSanitizer).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "partition/shard_plan.h"
#include "partition/shard_plan_json.h"
#include "tests/common/cli_process.h"
#include "tests/common/test_files.h"

namespace phx::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const std::string kTiny = ::phx::testing::testModelDir("tiny").string();

TEST(PlanCli, PrintsEachRanksShardAndTheTotals) {
  const ProcessResult run = runPhalanx({"plan", "--model", kTiny, "--tp", "3", "--pp", "2"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  // tiny: 8 query heads (3 | 3 | 2) over 2 KV heads, 2 layers (1 | 1), MLP 192 in 64-column blocks.
  EXPECT_THAT(run.out, HasSubstr("tp 3 x pp 2 = 6 workers"));
  EXPECT_THAT(run.out, HasSubstr("     4     1    1  [1, 2)     [3, 6)     [0, 2)    [64, 128)"));
  EXPECT_THAT(run.out, HasSubstr("     0     0    0  [0, 1)     [0, 3)     [0, 1)    [0, 64)"));
  EXPECT_THAT(run.out, HasSubstr("all-reduce  1280 bytes per token per forward pass (5 all-reduces of f32"));
  EXPECT_THAT(run.out, HasSubstr("stage sends 256 bytes per token"));
}

TEST(PlanCli, JsonIsThePlanComputedFromTheConfig) {
  const ProcessResult run = runPhalanx({"plan", "--model", kTiny, "--tp", "5", "--pp", "2", "--json"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const json printed = json::parse(run.out);
  ClusterSpec spec;
  spec.tp = 5;
  spec.pp = 2;
  const ModelConfig config = loadModelConfig(kTiny + "/config.json");
  EXPECT_EQ(printed, toJson(makeShardPlan(config, spec)));
  EXPECT_EQ(printed["ranks"].size(), 10u);
  EXPECT_EQ(printed["ranks"][7]["tp_rank"], 2);
  EXPECT_EQ(printed["all_reduce_dtype"], "f32");
  const ShardPlan parsed = shardPlanFromJson(printed, config);
  EXPECT_EQ(parsed.rank(1, 4).shard.lastStage, true);
}

TEST(PlanCli, Int8WeighsTheInt8Plan) {
  const ProcessResult run = runPhalanx({"plan", "--model", kTiny, "--tp", "2", "--dtype", "int8", "--json"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  ClusterSpec spec;
  spec.tp = 2;
  spec.matrices = WeightType::kInt8;
  EXPECT_EQ(json::parse(run.out), toJson(makeShardPlan(loadModelConfig(kTiny + "/config.json"), spec)));
  const ProcessResult table = runPhalanx({"plan", "--model", kTiny, "--tp", "2", "--dtype", "int8"});
  EXPECT_THAT(table.out, HasSubstr("matrices INT8"));
  const ProcessResult bad = runPhalanx({"plan", "--model", kTiny, "--tp", "2", "--dtype", "fp8"});
  EXPECT_EQ(bad.exitCode, 2);
  EXPECT_THAT(bad.err, HasSubstr("--dtype: expected bf16 or int8, got 'fp8'"));
}

TEST(PlanCli, StageWeightsAndBudgetAreHonoured) {
  // tiny: 2 layers, so weights 1,3 still give each stage one; a 20 MB budget holds a TP 2 rank (13 MB).
  const ProcessResult run = runPhalanx({"plan", "--model", kTiny, "--tp", "2", "--pp", "2", "--stage-weights", "1,3",
                                        "--rank-memory", "20MB", "--json"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(json::parse(run.out)["ranks"][2]["layers"], json::array({1, 2}));
}

TEST(PlanCli, RefusedPlansExitOneNamingTheConstraint) {
  ProcessResult run = runPhalanx({"plan", "--model", kTiny, "--tp", "9"});
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_THAT(run.err, HasSubstr("tp 9 is more than the model's 8 query heads"));
  run = runPhalanx({"plan", "--model", kTiny, "--tp", "1", "--pp", "3"});
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_THAT(run.err, HasSubstr("pp 3 is more than the model's 2 layers"));
  run = runPhalanx({"plan", "--model", kTiny, "--tp", "2", "--rank-memory", "10MB"});
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_THAT(run.err, HasSubstr("rank 0 (stage 0, tp 0) needs"));
  EXPECT_THAT(run.err, HasSubstr("for weights + KV, over its 10.0 MB budget"));
  run = runPhalanx({"plan", "--model", kTiny, "--tp", "1", "--pp", "2", "--stage-weights", "1,2,3"});
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_THAT(run.err, HasSubstr("3 stage memory weights given for pp 2"));
  run = runPhalanx({"plan", "--model", kTiny + "/no-such-dir", "--tp", "1"});
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_THAT(run.err, HasSubstr("no-such-dir"));
}

TEST(PlanCli, UsageErrorsExitTwoAndHelpWorks) {
  ProcessResult run = runPhalanx({"plan", "--model", kTiny});
  EXPECT_EQ(run.exitCode, 2);
  EXPECT_THAT(run.err, HasSubstr("--tp"));
  run = runPhalanx({"plan", "--model", kTiny, "--tp", "two"});
  EXPECT_EQ(run.exitCode, 2);
  EXPECT_THAT(run.err, HasSubstr("--tp expects an integer"));
  run = runPhalanx({"plan", "--model", kTiny, "--tp", "2", "--rank-memory", "8XB"});
  EXPECT_EQ(run.exitCode, 2);
  EXPECT_THAT(run.err, HasSubstr("--rank-memory expects a size"));
  run = runPhalanx({"plan", "--model", kTiny, "--tp", "2", "--pp", "2", "--stage-weights", "1,x"});
  EXPECT_EQ(run.exitCode, 2);
  EXPECT_THAT(run.err, HasSubstr("--stage-weights expects comma-separated numbers"));
  run = runPhalanx({"plan", "--help"});
  EXPECT_EQ(run.exitCode, 0);
  EXPECT_THAT(run.out, HasSubstr("usage: phalanx plan --model DIR --tp T"));
}

}  // namespace
}  // namespace phx::testing
