// `--dtype int8` through the control plane: real `phalanx worker` processes quantize their own shards while loading
// (asked by the coordinator, or by their own --dtype when the coordinator leaves it to them), hold what the plan
// says INT8 weighs, still read only their BF16 slices, and compute the logits of the single-process INT8 engine.
#include <gtest/gtest.h>

#include <cstdio>

#include "kernels/roofline.h"
#include "tests/cluster/cluster_harness.h"
#include "tests/cluster/worker_processes.h"
#include "tests/engine/engine_harness.h"

namespace phx::testing {
namespace {

// A rank of a row-parallel matrix (o_proj, down_proj) quantizes its own columns with scales of their own, where one
// process has one scale per whole row: the two INT8 models differ by about one quantization error, so the bound is
// the INT8 weights' own bound against BF16 (tests/engine/int8_accuracy_test.cc), not the BF16 cluster's 1e-4.
constexpr double kInt8ClusterNmseBound = 1e-3;
constexpr int kDecode = 4;

class Int8ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cpuFeatures().avx512Vnni) GTEST_SKIP() << "this CPU has no AVX512_VNNI (the W8A8 path)";
  }
};

void expectInt8Shards(const ClusterExecutor& cluster, const ShardPlan& int8Plan, const std::string& preset) {
  const auto reports = cluster.loadReports();
  ASSERT_EQ(int(reports.size()), int8Plan.workers());
  for (size_t w = 0; w < reports.size(); ++w) {
    EXPECT_EQ(reports[w].weightType, WeightType::kInt8) << "worker " << w;
    EXPECT_EQ(reports[w].weightBytes, int8Plan.ranks[w].weightBytes) << "worker " << w;
    EXPECT_EQ(reports[w].bytesRead, shardSliceBytes(preset, int8Plan.ranks[w].shard)) << "worker " << w;
  }
}

TEST_F(Int8ClusterTest, CoordinatorAsksForInt8WeightsAndKv) {
  const ShardPlan plan = planFor("small", 2, 1, WeightType::kInt8);
  const ShardPlan bf16Plan = planFor("small", 2, 1);
  UcxWorkers workers(plan.workers());
  const Dtypes int8{WeightType::kInt8, KvType::kInt8};
  auto cluster = startCluster("small", plan, workers.endpoints(), int8);
  ASSERT_TRUE(cluster->ready());
  expectInt8Shards(*cluster, plan, "small");
  for (size_t w = 0; w < plan.ranks.size(); ++w) {
    // One byte a matrix element instead of two (small's weights are mostly its BF16 embedding rows, so the whole
    // shard shrinks by less than half).
    EXPECT_LT(plan.ranks[w].weightBytes, bf16Plan.ranks[w].weightBytes);
  }

  const ScheduleResult got = runSchedule(*cluster, kDecode, kDefaultCandidates);
  const ScheduleResult oneProcess = runSchedule(localEngine("small", int8).runner(), kDecode, 0);
  const ScheduleResult bf16 = runSchedule(localEngine("small").runner(), kDecode, 0);
  const double vsInt8 = nmse(got.prefillLogits, oneProcess.prefillLogits);
  const double vsBf16 = nmse(got.prefillLogits, bf16.prefillLogits);
  std::printf("[small tp 2 int8] prefill logits NMSE %.3g vs one INT8 process, %.3g vs one BF16 process\n", vsInt8,
              vsBf16);
  EXPECT_LT(vsInt8, kInt8ClusterNmseBound);
  EXPECT_LT(vsBf16, kInt8ClusterNmseBound);
  // It is INT8 that ran, not BF16 under another name: the error against BF16 is well above the BF16 cluster's.
  EXPECT_GT(vsBf16, 1e-6);
}

TEST_F(Int8ClusterTest, WorkersOwnDtypeAppliesWhenTheCoordinatorLeavesItToThem) {
  const ShardPlan plan = planFor("small", 2, 1, WeightType::kInt8);
  std::vector<float> asked, ownDtype;
  {
    UcxWorkers workers(plan.workers());
    auto cluster = startCluster("small", plan, workers.endpoints(), {WeightType::kInt8, KvType::kBf16});
    asked = runSchedule(*cluster, 1, kDefaultCandidates).prefillLogits;
  }
  UcxWorkers workers(plan.workers(), {"--dtype", "int8"});
  auto cluster = startCluster("small", plan, workers.endpoints(), {std::nullopt, KvType::kBf16});
  expectInt8Shards(*cluster, plan, "small");
  ownDtype = runSchedule(*cluster, 1, kDefaultCandidates).prefillLogits;
  // The same quantization and kernels whoever chose them: bit for bit.
  EXPECT_EQ(ownDtype, asked);
}

}  // namespace
}  // namespace phx::testing
