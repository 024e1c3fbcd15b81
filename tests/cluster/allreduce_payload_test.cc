// --allreduce-dtype bf16 through the control plane: real `phalanx worker` processes over UCX send their all-reduces
// in BF16 and sum them in f32. The logits stay within BF16's rounding of the f32 cluster's, and it is BF16 that ran
// (they are not bit for bit the f32 ones); a coordinator that asks nothing keeps f32, the same as before.
#include <gtest/gtest.h>

#include <cstdio>

#include "tests/cluster/cluster_harness.h"
#include "tests/cluster/worker_processes.h"
#include "tests/common/numeric.h"

namespace phx::testing {
namespace {

// Each all-reduce input is rounded once to 8 bits of mantissa (relative error <= 2^-9) before it is summed; over
// the layers that leaves the logits' NMSE near (2^-9)^2 = 4e-6 a layer. 1e-4 is the BF16 cluster's own bound
// against one process (tests/cluster/cluster_test.cc), which the payload must not break.
constexpr double kBf16PayloadNmseBound = 1e-4;

ScheduleResult scheduleWith(const std::string& preset, const std::vector<std::string>& endpoints,
                            AllReducePayload payload) {
  ClusterExecutorOptions options = clusterOptions(preset, endpoints);
  options.allReducePayload = payload;
  auto cluster = ClusterExecutor::start(options);
  return runSchedule(*cluster, 4, kDefaultCandidates);
}

// On `small` and on phi4-L4 (Phi-4's own width: 5120-float all-reduces, 17920 MLP columns).
class AllReducePayloadTest : public ::testing::TestWithParam<std::string> {};

TEST_P(AllReducePayloadTest, Bf16PayloadKeepsTheLogitsWithinBf16Rounding) {
  const std::string preset = GetParam();
  UcxWorkers workers(2);
  const ScheduleResult f32 = scheduleWith(preset, workers.endpoints(), AllReducePayload::kF32);
  const ScheduleResult bf16 = scheduleWith(preset, workers.endpoints(), AllReducePayload::kBf16);
  const ScheduleResult oneProcess = runSchedule(localEngine(preset).runner(), 4, 0);
  const double vsF32 = nmse(bf16.prefillLogits, f32.prefillLogits);
  const double vsOneProcess = nmse(bf16.prefillLogits, oneProcess.prefillLogits);
  std::printf("[%s tp 2, bf16 all-reduce payload] prefill logits NMSE %.3g vs f32 payload, %.3g vs one process\n",
              preset.c_str(), vsF32, vsOneProcess);
  EXPECT_LT(vsF32, kBf16PayloadNmseBound);
  EXPECT_LT(vsOneProcess, kBf16PayloadNmseBound);
  EXPECT_GT(vsF32, 0) << "the BF16 payload gave the f32 payload's logits bit for bit: it did not run";
  // The default is f32, unchanged: the same workers asked nothing compute the f32 logits bit for bit.
  auto cluster = ClusterExecutor::start(clusterOptions(preset, workers.endpoints()));
  EXPECT_EQ(runSchedule(*cluster, 4, kDefaultCandidates).prefillLogits, f32.prefillLogits);
}

INSTANTIATE_TEST_SUITE_P(Presets, AllReducePayloadTest, ::testing::Values("small", "phi4-L4"),
                         [](const auto& info) { return info.param == "small" ? "Small" : "Phi4L4"; });

}  // namespace
}  // namespace phx::testing
