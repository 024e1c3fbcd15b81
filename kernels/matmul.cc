#include "kernels/matmul.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "kernels/kernel_check.h"
#include "kernels/matmul_int8.h"
#include "kernels/matmul_paths.h"
#include "kernels/roofline.h"

namespace phx {
namespace {

std::atomic<int> gCompute{-1};  // -1: not chosen yet
std::once_flag gDetectOnce;

MatmulCompute detectCompute() {
  if (const char* forced = std::getenv("PHX_MATMUL_COMPUTE")) {
    const auto named = parseMatmulCompute(forced);
    if (named && (*named == MatmulCompute::kF32Fma || cpuFeatures().avx512Bf16)) return *named;
  }
  return computeForCpu(cpuIdentity()).compute;
}

void requireMatmulArgs(const float* x, int64_t ldx, int64_t m, const PackedWeight& w, const float* y, int64_t ldy) {
  PHX_KERNEL_REQUIRE(!w.empty(), "matmul: the weight is empty (not packed)");
  PHX_KERNEL_REQUIRE(m >= 0, "matmul: negative row count ", m);
  PHX_KERNEL_REQUIRE(m == 0 || (x != nullptr && y != nullptr), "matmul: null x or y");
  PHX_KERNEL_REQUIRE(ldx >= w.cols(), "matmul: x rows are ", ldx, " floats apart, the weight has ", w.cols(),
                     " input features");
  PHX_KERNEL_REQUIRE(ldy >= w.rows(), "matmul: y rows are ", ldy, " floats apart, the weight has ", w.rows(),
                     " output features");
}

}  // namespace

MatmulCompute matmulCompute() {
  std::call_once(gDetectOnce, [] {
    int expected = -1;
    gCompute.compare_exchange_strong(expected, int(detectCompute()));
  });
  return MatmulCompute(gCompute.load());
}

void setMatmulCompute(MatmulCompute compute) {
  if (compute == MatmulCompute::kBf16Dot && !cpuFeatures().avx512Bf16) {
    throw std::invalid_argument("setMatmulCompute: bf16dot needs AVX512_BF16, which this CPU lacks");
  }
  std::call_once(gDetectOnce, [] {});  // a later matmulCompute() must not probe and overwrite this
  gCompute.store(int(compute));
}

const char* matmulPathName(int64_t m, const PackedWeight& w) {
  using namespace matmul_detail;
  if (w.type() == WeightType::kInt8) return int8PathName(int8Path());
  if (w.type() == WeightType::kF32) return m <= kFmaTileRows ? "f32-stream" : "f32-panel";
  if (matmulCompute() == MatmulCompute::kBf16Dot) return m <= kDotTileRows ? "bf16dot-stream" : "bf16dot-chunked";
  return m <= kWidenTileRows ? "f32fma-widen-stream" : "f32fma-widen-panel";
}

void matmul(const float* x, int64_t m, const PackedWeight& w, float* y) { matmul(x, w.cols(), m, w, y, w.rows()); }

void matmul(const float* x, int64_t ldx, int64_t m, const PackedWeight& w, float* y, int64_t ldy) {
  requireMatmulArgs(x, ldx, m, w, y, ldy);
  if (m == 0) return;
  if (w.type() == WeightType::kInt8) return matmul_detail::matmulInt8(x, ldx, m, w, y, ldy);
  if (w.type() == WeightType::kBf16 && matmulCompute() == MatmulCompute::kBf16Dot) {
    matmul_detail::matmulBf16Dot(x, ldx, m, w, y, ldy);
  } else {
    matmul_detail::matmulF32Fma(x, ldx, m, w, y, ldy);
  }
}

namespace matmul_detail {

int64_t rowParts(int64_t blocks, int64_t m, int tileRows, int threads) {
  // Enough blocks (four per thread) balance on their own; otherwise split the rows too, never below a tile.
  int64_t wanted = (4 * int64_t(threads) + blocks - 1) / blocks;
  int64_t tiles = (m + tileRows - 1) / tileRows;
  return std::clamp<int64_t>(wanted, 1, tiles);
}

BlockMasks blockMasks(int64_t validCols) {
  BlockMasks masks;
  for (int j = 0; j < 4; ++j) {
    int64_t lanes = std::clamp<int64_t>(validCols - 16 * j, 0, 16);
    masks.group[j] = uint16_t(lanes == 16 ? 0xffffu : (1u << lanes) - 1);
  }
  return masks;
}

}  // namespace matmul_detail
}  // namespace phx
