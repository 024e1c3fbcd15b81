// This machine's limits for benchmarks, in bytes/s and FLOP/s: thin wrappers over the kernels' own measurements
// (kernels/roofline.h), so every benchmark and `phalanx bench` judge their figures by the same yardstick.
#pragma once

#include <cstdint>

namespace phx {

struct HardwareLimits {
  int threads = 0;
  double readBandwidthBytesPerSecond = 0;
  double peakF32FlopsPerSecond = 0;  // an FMA counts as 2 FLOPs
};

// Reads `bufferBytes` `passes` times on `threads` threads (the median pass; the host reports a 260 MiB L3, so
// keep the buffer well above it).
double measureReadBandwidth(int threads, int64_t bufferBytes = int64_t(2) << 30, int passes = 5);
double measurePeakF32Flops(int threads, double seconds = 0.2);
HardwareLimits measureHardwareLimits(int threads);

}  // namespace phx
