// This machine's limits, measured in the same run as the figures they judge: memory read bandwidth (AVX-512 loads
// streaming a buffer far larger than the caches) and peak arithmetic rates (independent register-only chains).
// The benchmarks print every rate beside its limit; the matmul picks its compute mode from the two peaks.
#pragma once

#include <cstddef>
#include <string>

#include "kernels/aligned_buffer.h"

namespace phx {

// The kernels' instruction tier this build was compiled for (kernels/simd.h): "avx512" or "avx2".
const char* kernelTier();

struct CpuFeatures {
  bool kernelIsa = false;   // everything kernelTier() needs: AVX-512 F/BW/VL/DQ, or AVX2 and FMA
  std::string missing;      // what of that this CPU lacks, "AVX512BW, AVX512DQ"; empty where kernelIsa
  bool avx512Bf16 = false;  // vdpbf16ps / vcvtne2ps2bf16 (the avx512 tier only)
  bool avx512Vnni = false;  // vpdpbusd (u8 x s8 -> int32): the INT8 W8A8 matmul (the avx512 tier only)
};

CpuFeatures cpuFeatures();

// Throws std::runtime_error naming the missing instructions when this CPU cannot run this build's kernels.
void requireKernelIsa();

// GFLOP/s of f32 FMA (2 flops a lane) with `threads` threads, each running for about `seconds`.
double measurePeakF32Gflops(int threads, double seconds = 0.2);
// GFLOP/s of vdpbf16ps (4 flops a 32-bit lane); 0 where the CPU has no AVX512_BF16.
double measurePeakBf16DotGflops(int threads, double seconds = 0.2);
// GOP/s of vpdpbusd (64 u8 x s8 multiply-adds = 128 ops per 512-bit instruction); 0 without AVX512_VNNI.
double measurePeakVnniGops(int threads, double seconds = 0.2);
// GB/s read by `threads` threads streaming a `bytes` buffer `reps` times: the median pass. The buffer is written
// once first so that its pages are real.
double measureReadBandwidthGBs(int threads, size_t bytes = size_t(4) << 30, int reps = 5);

// The same probe kept for repeated passes: a benchmark on a host whose bandwidth drifts (a shared VM: 36-65 GB/s
// here within minutes) probes beside each repetition and judges each against the bandwidth of its own minute.
class ReadBandwidthProbe {
 public:
  ReadBandwidthProbe(int threads, size_t bytes);
  double passGBs() const;  // one pass over the whole buffer

 private:
  int threads_;
  AlignedBuffer buffer_;
};

}  // namespace phx
