#include "kernels/hardware_limits.h"

#include <algorithm>
#include <vector>

#include "kernels/matmul.h"

namespace phx {

HardwareLimits measureHardwareLimits(int threads, const ReadBandwidthProbe& probe) {
  HardwareLimits limits;
  limits.threads = threads;
  std::vector<double> passes;
  for (int pass = 0; pass < 5; ++pass) passes.push_back(probe.passGBs() * 1e9);
  std::sort(passes.begin(), passes.end());
  limits.readBandwidthBytesPerSecond = passes[passes.size() / 2];
  limits.peakF32FlopsPerSecond = measurePeakF32Gflops(threads) * 1e9;
  limits.peakBf16DotFlopsPerSecond = measurePeakBf16DotGflops(threads) * 1e9;
  limits.peakVnniOpsPerSecond = measurePeakVnniGops(threads) * 1e9;
  const bool dot = matmulCompute() == MatmulCompute::kBf16Dot;
  limits.matmulArithmetic = dot ? "bf16 dot" : "f32 FMA";
  limits.peakMatmulFlopsPerSecond = dot ? limits.peakBf16DotFlopsPerSecond : limits.peakF32FlopsPerSecond;
  return limits;
}

HardwareLimits bestOf(const HardwareLimits& a, const HardwareLimits& b) {
  HardwareLimits limits = a;
  limits.readBandwidthBytesPerSecond = std::max(a.readBandwidthBytesPerSecond, b.readBandwidthBytesPerSecond);
  limits.peakF32FlopsPerSecond = std::max(a.peakF32FlopsPerSecond, b.peakF32FlopsPerSecond);
  limits.peakBf16DotFlopsPerSecond = std::max(a.peakBf16DotFlopsPerSecond, b.peakBf16DotFlopsPerSecond);
  limits.peakMatmulFlopsPerSecond = std::max(a.peakMatmulFlopsPerSecond, b.peakMatmulFlopsPerSecond);
  limits.peakVnniOpsPerSecond = std::max(a.peakVnniOpsPerSecond, b.peakVnniOpsPerSecond);
  return limits;
}

}  // namespace phx
