// The compute table: the BF16 matmul path comes from the CPU's identity, never from timing (issue 11, case 3).
#include "kernels/cpu_identity.h"

#include <gtest/gtest.h>

namespace phx {
namespace {

CpuIdentity cpu(const std::string& vendor, int family, int model, bool bf16) { return {vendor, family, model, bf16}; }

TEST(CpuIdentityTest, TheTableGivesEachKnownCpuItsPath) {
  EXPECT_EQ(computeForCpu(cpu("AuthenticAMD", 0x19, 0x11, true)).compute, MatmulCompute::kBf16Dot);  // Zen 4 EPYC
  EXPECT_EQ(computeForCpu(cpu("AuthenticAMD", 0x1a, 0x02, true)).compute, MatmulCompute::kBf16Dot);  // Zen 5
  EXPECT_EQ(computeForCpu(cpu("GenuineIntel", 0x6, 0xcf, true)).compute, MatmulCompute::kF32Fma);    // Emerald Rapids
  EXPECT_EQ(computeForCpu(cpu("AuthenticAMD", 0x19, 0x01, false)).compute, MatmulCompute::kF32Fma);  // Zen 3
  EXPECT_EQ(computeForCpu(cpu("HygonGenuine", 0x18, 0x00, true)).compute, MatmulCompute::kF32Fma);   // unlisted
  EXPECT_NE(computeForCpu(cpu("GenuineIntel", 0x6, 0xcf, true)).reason, "");
}

TEST(CpuIdentityTest, ThisMachineIsIdentifiedTheSameEveryTime) {
  const CpuIdentity first = cpuIdentity();
  EXPECT_FALSE(first.vendor.empty());
  EXPECT_GT(first.family, 0);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(computeForCpu(cpuIdentity()).compute, computeForCpu(first).compute);
    EXPECT_EQ(cpuIdentity().describe(), first.describe());
  }
}

TEST(CpuIdentityTest, ComputeNamesRoundTrip) {
  for (MatmulCompute c : {MatmulCompute::kBf16Dot, MatmulCompute::kF32Fma}) {
    EXPECT_EQ(parseMatmulCompute(matmulComputeName(c)), c);
  }
  EXPECT_FALSE(parseMatmulCompute("fast"));
}

}  // namespace
}  // namespace phx
