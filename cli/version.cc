#include "cli/version.h"

#include "kernels/cpu_identity.h"
#include "kernels/roofline.h"

namespace phx::cli {
namespace {

const char* yesNo(bool value) { return value ? "yes" : "no"; }

}  // namespace

std::string versionText() {
  const CpuIdentity cpu = cpuIdentity();
  const CpuFeatures features = cpuFeatures();
  std::string text = std::string("phalanx ") + PHX_VERSION + " (commit " + PHX_COMMIT + ")\n";
  text += std::string("build: ") + kernelTier() + " kernels, code for " + PHX_CODE_ISA + "\n";
  text += "cpu: " + cpu.describe() + "\n";
  text += std::string("  kernel instructions: ") +
          (features.kernelIsa ? "all present" : "missing " + features.missing) + "\n";
  text += std::string("  AVX512_BF16: ") + yesNo(features.avx512Bf16) + ", AVX512_VNNI: " +
          yesNo(features.avx512Vnni) + "\n";
  if (features.kernelIsa) {
    const ComputeChoice choice = computeForCpu(cpu);
    text += std::string("  BF16 matmul: ") + matmulComputeName(choice.compute) + " (" + choice.reason + ")\n";
  }
  return text;
}

std::string unsupportedCpuMessage() {
  const CpuFeatures features = cpuFeatures();
  if (features.kernelIsa) return "";
  return std::string("phalanx: this CPU lacks ") + features.missing + ", which this build's " + kernelTier() +
         " kernels need; run it on a CPU that has them, or build from source on this one (docs/engine.md)";
}

}  // namespace phx::cli
