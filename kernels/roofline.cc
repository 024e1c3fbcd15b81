#include "kernels/roofline.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/aligned_buffer.h"
#include "kernels/simd.h"
#include "kernels/vec_math.h"

namespace phx {
namespace {

constexpr int kChains = 12;  // independent accumulators: enough to cover FMA latency x pipes

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Both loops keep kChains accumulators in registers; the result is returned so the work cannot be dropped.
__attribute__((noinline)) float fmaChains(int64_t iterations) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(1.0f + 1e-3f * float(i));
  const __m512 b = _mm512_set1_ps(0.9999f);
  const __m512 c = _mm512_set1_ps(1e-4f);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], b, c);
  }
  for (int i = 1; i < kChains; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
  return vec::sum(acc[0]);
}

__attribute__((noinline)) float dotChains(int64_t iterations) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(1.0f + 1e-3f * float(i));
  const __m512bh b = (__m512bh)_mm512_set1_epi16(0x3f80);  // 1.0
  const __m512bh c = (__m512bh)_mm512_set1_epi16(0x3800);  // 2^-15
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], b, c);
  }
  for (int i = 1; i < kChains; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
  return vec::sum(acc[0]);
}

// 24 independent vpdpbusd chains in fixed registers, one asm block per iteration: GCC keeps an array of 24
// accumulators in memory here (a load and a store around every instruction, half the real rate), so the chains are
// written out. Their values are never read back: only the instruction rate matters.
constexpr int kVnniChains = 24;

__attribute__((noinline)) float vnniChains(int64_t iterations) {
#if PHX_KERNELS_SIMDE
  // The avx2 tier reports no VNNI (cpuFeatures()), so this probe never runs there; zmm16..31 do not exist.
  (void)iterations;
#else
  for (int64_t it = 0; it < iterations; ++it) {
    asm volatile(
        "vpternlogd $0xff, %%zmm30, %%zmm30, %%zmm30\n\t"
        "vpabsb %%zmm30, %%zmm31\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm0\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm1\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm2\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm3\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm4\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm5\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm6\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm7\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm8\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm9\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm10\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm11\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm12\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm13\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm14\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm15\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm16\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm17\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm18\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm19\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm20\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm21\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm22\n\t"
        "vpdpbusd %%zmm31, %%zmm30, %%zmm23\n\t"
        :
        :
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
          "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm30",
          "xmm31");
  }
#endif
  return 0.0f;
}

// Runs `chains(iterations)` on every thread; returns GFLOP/s given the flops of one iteration on one thread.
double measureChains(float (*chains)(int64_t), double flopsPerIteration, int threads, double seconds) {
  int64_t iterations = 1 << 16;
  for (;;) {  // calibrate on one thread to about a tenth of the budget
    double start = nowSeconds();
    volatile float sink = chains(iterations);
    (void)sink;
    if (nowSeconds() - start > seconds / 10 || iterations > (int64_t(1) << 40)) break;
    iterations *= 2;
  }
  std::vector<double> rates;
  for (int rep = 0; rep < 5; ++rep) {
    double start = nowSeconds();
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += chains(iterations);
    double elapsed = nowSeconds() - start;
    volatile float keep = sink;
    (void)keep;
    rates.push_back(flopsPerIteration * double(iterations) * threads / elapsed / 1e9);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

int64_t sumChunk(const char* chunk, size_t bytes) {
  const __m512i* p = reinterpret_cast<const __m512i*>(chunk);
  __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
  for (size_t i = 0; i < bytes / 64; i += 4) {
    s0 = _mm512_add_epi64(s0, _mm512_load_si512(p + i));
    s1 = _mm512_add_epi64(s1, _mm512_load_si512(p + i + 1));
    s2 = _mm512_add_epi64(s2, _mm512_load_si512(p + i + 2));
    s3 = _mm512_add_epi64(s3, _mm512_load_si512(p + i + 3));
  }
  alignas(64) int64_t lanes[8];
  _mm512_store_si512(lanes, _mm512_add_epi64(_mm512_add_epi64(s0, s1), _mm512_add_epi64(s2, s3)));
  return lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
}

}  // namespace

const char* kernelTier() { return PHX_KERNEL_TIER_NAME; }

CpuFeatures cpuFeatures() {
  __builtin_cpu_init();
  struct Needed {
    const char* name;
    bool present;
  };
#if PHX_KERNELS_SIMDE
  const Needed needed[] = {{"AVX2", __builtin_cpu_supports("avx2")}, {"FMA", __builtin_cpu_supports("fma")}};
#else
  const Needed needed[] = {{"AVX512F", __builtin_cpu_supports("avx512f")},
                           {"AVX512BW", __builtin_cpu_supports("avx512bw")},
                           {"AVX512VL", __builtin_cpu_supports("avx512vl")},
                           {"AVX512DQ", __builtin_cpu_supports("avx512dq")}};
#endif
  CpuFeatures features;
  for (const Needed& need : needed) {
    if (need.present) continue;
    features.missing += std::string(features.missing.empty() ? "" : ", ") + need.name;
  }
  features.kernelIsa = features.missing.empty();
  // The avx2 tier runs SIMDe's lane-by-lane vdpbf16ps / vpdpbusd only in its own tests, never by choice.
  const bool realAvx512 = !PHX_KERNELS_SIMDE && features.kernelIsa;
  features.avx512Bf16 = realAvx512 && __builtin_cpu_supports("avx512bf16");
  features.avx512Vnni = realAvx512 && __builtin_cpu_supports("avx512vnni");
  return features;
}

void requireKernelIsa() {
  const CpuFeatures features = cpuFeatures();
  if (!features.kernelIsa) {
    throw std::runtime_error(std::string("kernels: this CPU lacks ") + features.missing + ", which the " +
                             kernelTier() + " kernels of this build need" +
                             (PHX_KERNELS_SIMDE ? "" : " (a build from source on this CPU uses the avx2 tier)"));
  }
}

double measurePeakF32Gflops(int threads, double seconds) {
  requireKernelIsa();
  return measureChains(fmaChains, 2.0 * 16 * kChains, threads, seconds);
}

double measurePeakBf16DotGflops(int threads, double seconds) {
  if (!cpuFeatures().avx512Bf16) return 0.0;
  return measureChains(dotChains, 4.0 * 16 * kChains, threads, seconds);
}

double measurePeakVnniGops(int threads, double seconds) {
  if (!cpuFeatures().avx512Vnni) return 0.0;
  return measureChains(vnniChains, 2.0 * 64 * kVnniChains, threads, seconds);
}

constexpr size_t kProbeChunk = size_t(1) << 16;

ReadBandwidthProbe::ReadBandwidthProbe(int threads, size_t bytes)
    : threads_(threads), buffer_(std::max<size_t>(1, bytes / kProbeChunk) * kProbeChunk) {
  requireKernelIsa();
  const size_t chunks = buffer_.bytes() / kProbeChunk;
  char* base = buffer_.as<char>();
#pragma omp parallel for num_threads(threads_) schedule(static)
  for (size_t c = 0; c < chunks; ++c) std::memset(base + c * kProbeChunk, 1, kProbeChunk);
}

double ReadBandwidthProbe::passGBs() const {
  const size_t chunks = buffer_.bytes() / kProbeChunk;
  const char* base = buffer_.as<char>();
  const double start = nowSeconds();
  int64_t total = 0;
#pragma omp parallel for num_threads(threads_) schedule(static) reduction(+ : total)
  for (size_t c = 0; c < chunks; ++c) total += sumChunk(base + c * kProbeChunk, kProbeChunk);
  const double elapsed = nowSeconds() - start;
  volatile int64_t keep = total;
  (void)keep;
  return double(buffer_.bytes()) / elapsed / 1e9;
}

double measureReadBandwidthGBs(int threads, size_t bytes, int reps) {
  const ReadBandwidthProbe probe(threads, bytes);
  std::vector<double> rates;
  for (int rep = 0; rep < reps; ++rep) rates.push_back(probe.passGBs());
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

}  // namespace phx
