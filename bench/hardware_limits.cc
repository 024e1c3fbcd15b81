#include "bench/hardware_limits.h"

#include "kernels/roofline.h"

namespace phx {

double measureReadBandwidth(int threads, int64_t bufferBytes, int passes) {
  return measureReadBandwidthGBs(threads, size_t(bufferBytes), passes) * 1e9;
}

double measurePeakF32Flops(int threads, double seconds) { return measurePeakF32Gflops(threads, seconds) * 1e9; }

HardwareLimits measureHardwareLimits(int threads) {
  return {threads, measureReadBandwidth(threads), measurePeakF32Flops(threads)};
}

}  // namespace phx
