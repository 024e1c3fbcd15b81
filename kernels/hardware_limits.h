// This machine's limits as one record, measured with the probes of kernels/roofline.h: what `phalanx bench` and
// the benchmark binaries judge every figure against. One definition, so each tool states the same yardstick.
#pragma once

#include <string>

#include "kernels/roofline.h"

namespace phx {

struct HardwareLimits {
  int threads = 0;
  double readBandwidthBytesPerSecond = 0;
  double peakF32FlopsPerSecond = 0;      // an FMA counts as 2 FLOPs
  double peakBf16DotFlopsPerSecond = 0;  // 0 without AVX512_BF16
  std::string matmulArithmetic;          // what the matmul uses for BF16 weights: "f32 FMA" or "bf16 dot"
  double peakMatmulFlopsPerSecond = 0;   // that arithmetic's peak
  double peakVnniOpsPerSecond = 0;       // vpdpbusd u8 x s8 (INT8 weights' arithmetic); 0 without AVX512_VNNI
};

// The median of 5 passes of `probe` (its buffer well past the L3), register-only FMA, vdpbf16ps and vpdpbusd
// chains for the peaks, on `threads` threads.
HardwareLimits measureHardwareLimits(int threads, const ReadBandwidthProbe& probe);

// A limit is what the machine can do: the best of two measurements. On a shared host one probe can be slowed by a
// neighbour (bandwidth probes here ranged from 36 to 63 GB/s within minutes), so benchmarks measure before and
// after their cases.
HardwareLimits bestOf(const HardwareLimits& a, const HardwareLimits& b);

}  // namespace phx
