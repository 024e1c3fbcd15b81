// INT8 weights: the W8A8 vpdpbusd path and the weight-only widening path (kernels/matmul_int8.h). Both walk the
// packed [rows/64][cols/4][64][4] blocks the way matmul_bf16_dot.cc walks its pairs: one 64-byte load is 16 output
// rows x 4 k, a tile of r rows x 64 outputs keeps 4r accumulators, and work items are (weight block, row range).
#include "kernels/matmul_int8.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include "kernels/matmul_paths.h"
#include "kernels/quantize.h"
#include "kernels/roofline.h"
#include "kernels/scratch.h"
#include "kernels/simd.h"
#include "kernels/threading.h"

namespace phx {
namespace {

std::atomic<int> gPath{-1};
std::once_flag gDetectOnce;

Int8Path detectPath() {
  const bool vnni = cpuFeatures().avx512Vnni;
  if (const char* forced = std::getenv("PHX_INT8_PATH")) {
    if (std::strcmp(forced, "vnni") == 0 && vnni) return Int8Path::kVnni;
    if (std::strcmp(forced, "weightonly") == 0) return Int8Path::kWeightOnly;
  }
  return vnni ? Int8Path::kVnni : Int8Path::kWeightOnly;
}

}  // namespace

const char* int8PathName(Int8Path path) { return path == Int8Path::kVnni ? "int8-vnni" : "int8-weightonly"; }

Int8Path int8Path() {
  std::call_once(gDetectOnce, [] {
    int expected = -1;
    gPath.compare_exchange_strong(expected, int(detectPath()));
  });
  return Int8Path(gPath.load());
}

void setInt8Path(Int8Path path) {
  if (path == Int8Path::kVnni && !cpuFeatures().avx512Vnni) {
    throw std::invalid_argument("setInt8Path: the W8A8 path needs AVX512_VNNI, which this CPU lacks");
  }
  std::call_once(gDetectOnce, [] {});
  gPath.store(int(path));
}

namespace matmul_detail {
namespace {

// Work items: every weight block times enough row parts to feed every thread (as the BF16 path splits).
template <typename Body>
void forEachItem(int64_t m, const PackedWeight& w, int tileRows, Body&& body) {
  const int64_t blocks = w.rowBlocks();
  const int64_t tiles = (m + tileRows - 1) / tileRows;
  const int64_t parts = rowParts(blocks, m, tileRows, kernelThreads());
  parallelFor(blocks * parts, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const IndexRange tileRange = splitRange(tiles, int(parts), int(item % parts));
      const int64_t rowBegin = tileRange.begin * tileRows;
      const int64_t rowEnd = std::min(m, tileRange.end() * tileRows);
      if (rowBegin < rowEnd) body(item / parts, rowBegin, rowEnd);
    }
  });
}

// ---- W8A8 ----------------------------------------------------------------------------------------------------

// acc += u8 x s8 (vpdpbusd). Inline asm: GCC 12 compiles the intrinsic in a 24-accumulator tile with a register
// copy and a spill per instruction (2.5x slower); the asm keeps every accumulator in its register.
inline __m512i dpbusd(__m512i acc, __m512i u8, __m512i s8) {
#if PHX_KERNELS_SIMDE
  return _mm512_dpbusd_epi32(acc, u8, s8);  // the avx2 tier (kernels/simd.h): SIMDe's, lane by lane
#else
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "v"(s8));
  return acc;
#endif
}

// acc[R][64] (+)= xq[R, quads * 4] . chunk (`quads` k quads of one 64-row block), exact int32.
template <int R>
void vnniTile(const uint8_t* xq, int64_t ldx, const int8_t* chunk, int64_t quads, int32_t* acc, bool accumulate) {
  __m512i a[R][4];
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < 4; ++j) {
      a[i][j] = accumulate ? _mm512_load_si512(acc + i * 64 + 16 * j) : _mm512_setzero_si512();
    }
  }
  for (int64_t p = 0; p < quads; ++p) {
    const int8_t* wp = chunk + p * 256;
    __m512i wv[4];
    for (int j = 0; j < 4; ++j) wv[j] = _mm512_load_si512(wp + 64 * j);
    for (int i = 0; i < R; ++i) {
      int32_t four;
      std::memcpy(&four, xq + i * ldx + 4 * p, sizeof four);
      const __m512i xv = _mm512_set1_epi32(four);
      for (int j = 0; j < 4; ++j) a[i][j] = dpbusd(a[i][j], xv, wv[j]);
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < 4; ++j) _mm512_store_si512(acc + i * 64 + 16 * j, a[i][j]);
  }
}

using VnniTileFn = void (*)(const uint8_t*, int64_t, const int8_t*, int64_t, int32_t*, bool);
constexpr VnniTileFn kVnniTiles[kVnniTileRows + 1] = {nullptr,      vnniTile<1>, vnniTile<2>, vnniTile<3>,
                                                      vnniTile<4>, vnniTile<5>, vnniTile<6>};

// Rows [rowBegin, rowEnd) of y against weight block `block`: int32 sums in per-thread scratch, K walked in chunks
// that every tile reuses from L2, then dequantized.
void vnniBlock(const uint8_t* xq, const float* xScales, int64_t paddedCols, const PackedWeight& w, int64_t block,
               int64_t rowBegin, int64_t rowEnd, float* y, int64_t ldy) {
  const int64_t rows = rowEnd - rowBegin;
  auto* acc = static_cast<int32_t*>(threadScratch(ScratchSlot::kOutput, size_t(rows * 64) * sizeof(int32_t)));
  const int8_t* base = w.int8Block(block);
  const int64_t quads = paddedCols / 4;
  for (int64_t q0 = 0; q0 < quads; q0 += kVnniChunkQuads) {
    const int64_t chunk = std::min(kVnniChunkQuads, quads - q0);
    for (int64_t i = 0; i < rows; i += kVnniTileRows) {
      const int tileRows = int(std::min<int64_t>(kVnniTileRows, rows - i));
      kVnniTiles[tileRows](xq + (rowBegin + i) * paddedCols + 4 * q0, paddedCols, base + q0 * 256, chunk,
                           acc + i * 64, q0 > 0);
    }
  }
  const BlockMasks masks = blockMasks(std::min<int64_t>(kPackedRowBlock, w.rows() - block * kPackedRowBlock));
  const int64_t firstRow = block * kPackedRowBlock;
  for (int j = 0; j < 4; ++j) {
    const __m512i zeroPointSums =
        _mm512_mullo_epi32(_mm512_load_si512(w.rowSums() + firstRow + 16 * j), _mm512_set1_epi32(kActivationZeroPoint));
    const __m512 scales = _mm512_load_ps(w.rowScales() + firstRow + 16 * j);
    for (int64_t i = 0; i < rows; ++i) {
      const __m512i exact = _mm512_sub_epi32(_mm512_load_si512(acc + i * 64 + 16 * j), zeroPointSums);
      const __m512 value = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(exact), scales),
                                         _mm512_set1_ps(xScales[rowBegin + i]));
      _mm512_mask_storeu_ps(y + (rowBegin + i) * ldy + firstRow + 16 * j, masks.group[j], value);
    }
  }
}

// ---- weight-only ---------------------------------------------------------------------------------------------

// y[R, 64] = x[R, quads * 4] . block, f32. A 16-byte piece of a 64-byte load is 4 rows x 4 k: widened to 16 f32
// lanes (row, k % 4) and multiplied by x's 4 values of that quad repeated; lanes of a row are summed at the end.
template <int R>
void widenTile(const float* x, int64_t ldx, const int8_t* block, int64_t quads, const float* scales, float* y,
               int64_t ldy, const BlockMasks& masks) {
  for (int j = 0; j < 4; ++j) {
    if (masks.group[j] == 0) continue;
    __m512 acc[R][4];
    for (int i = 0; i < R; ++i) {
      for (int s = 0; s < 4; ++s) acc[i][s] = _mm512_setzero_ps();
    }
    const int8_t* group = block + 64 * j;
    for (int64_t p = 0; p < quads; ++p) {
      const int8_t* wp = group + p * 256;
      __m512 wv[4];
      for (int s = 0; s < 4; ++s) {
        wv[s] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(wp + 16 * s))));
      }
      for (int i = 0; i < R; ++i) {
        const __m512 xv = _mm512_broadcast_f32x4(_mm_loadu_ps(x + i * ldx + 4 * p));
        for (int s = 0; s < 4; ++s) acc[i][s] = _mm512_fmadd_ps(wv[s], xv, acc[i][s]);
      }
    }
    for (int i = 0; i < R; ++i) {
      alignas(64) float lanes[4][16];
      alignas(64) float sums[16];
      for (int s = 0; s < 4; ++s) _mm512_store_ps(lanes[s], acc[i][s]);
      for (int s = 0; s < 4; ++s) {
        for (int t = 0; t < 4; ++t) {
          sums[4 * s + t] = (lanes[s][4 * t] + lanes[s][4 * t + 1]) + (lanes[s][4 * t + 2] + lanes[s][4 * t + 3]);
        }
      }
      const __m512 value = _mm512_mul_ps(_mm512_load_ps(sums), _mm512_loadu_ps(scales + 16 * j));
      _mm512_mask_storeu_ps(y + i * ldy + 16 * j, masks.group[j], value);
    }
  }
}

using WidenTileFn = void (*)(const float*, int64_t, const int8_t*, int64_t, const float*, float*, int64_t,
                             const BlockMasks&);
constexpr WidenTileFn kWidenTiles[kWidenInt8TileRows + 1] = {nullptr, widenTile<1>, widenTile<2>, widenTile<3>,
                                                             widenTile<4>};

}  // namespace

void matmulInt8Vnni(const float* x, int64_t ldx, int64_t m, const PackedWeight& w, float* y, int64_t ldy) {
  const int64_t paddedCols = w.paddedCols();
  // One scratch slot holds the u8 rows then their f32 scales (64-byte aligned after the rows).
  const size_t rowBytes = size_t(m * paddedCols + 63) / 64 * 64;
  auto* scratch = static_cast<uint8_t*>(threadScratch(ScratchSlot::kActivations, rowBytes + size_t(m) * 4));
  auto* xScales = reinterpret_cast<float*>(scratch + rowBytes);
  quantizeActivationsU8(x, ldx, m, w.cols(), paddedCols, scratch, xScales);
  forEachItem(m, w, kVnniTileRows, [&](int64_t block, int64_t rowBegin, int64_t rowEnd) {
    vnniBlock(scratch, xScales, paddedCols, w, block, rowBegin, rowEnd, y, ldy);
  });
}

void matmulInt8WeightOnly(const float* x, int64_t ldx, int64_t m, const PackedWeight& w, float* y, int64_t ldy) {
  const int64_t paddedCols = w.paddedCols();
  // x copied with zero padding so the last quads read no garbage (padding weights are 0, but NaN * 0 is NaN).
  auto* xPadded = static_cast<float*>(threadScratch(ScratchSlot::kActivations, size_t(m * paddedCols) * 4));
  for (int64_t i = 0; i < m; ++i) {
    std::memcpy(xPadded + i * paddedCols, x + i * ldx, size_t(w.cols()) * 4);
    std::fill(xPadded + i * paddedCols + w.cols(), xPadded + (i + 1) * paddedCols, 0.0f);
  }
  const int64_t quads = paddedCols / 4;
  forEachItem(m, w, kWidenInt8TileRows, [&](int64_t block, int64_t rowBegin, int64_t rowEnd) {
    const BlockMasks masks = blockMasks(std::min<int64_t>(kPackedRowBlock, w.rows() - block * kPackedRowBlock));
    const float* scales = w.rowScales() + block * kPackedRowBlock;
    for (int64_t i = rowBegin; i < rowEnd; i += kWidenInt8TileRows) {
      const int rows = int(std::min<int64_t>(kWidenInt8TileRows, rowEnd - i));
      kWidenTiles[rows](xPadded + i * paddedCols, paddedCols, w.int8Block(block), quads, scales,
                        y + i * ldy + block * kPackedRowBlock, ldy, masks);
    }
  });
}

void matmulInt8(const float* x, int64_t ldx, int64_t m, const PackedWeight& w, float* y, int64_t ldy) {
  if (int8Path() == Int8Path::kVnni) {
    matmulInt8Vnni(x, ldx, m, w, y, ldy);
  } else {
    matmulInt8WeightOnly(x, ldx, m, w, y, ldy);
  }
}

}  // namespace matmul_detail
}  // namespace phx
