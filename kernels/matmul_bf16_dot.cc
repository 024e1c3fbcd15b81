// BF16 weights x BF16-rounded activations with vdpbf16ps, fp32 accumulation. Each 64-byte weight load holds 16
// output rows x one k pair; each x pair is broadcast to all lanes, so a tile of r rows x 64 columns is
// 4r independent accumulators and one weight load feeds r instructions.
#include <immintrin.h>

#include <algorithm>

#include "kernels/matmul_paths.h"
#include "kernels/scratch.h"
#include "kernels/threading.h"

namespace phx::matmul_detail {

void roundRowsToBf16(const float* x, int64_t ldx, int64_t m, int64_t cols, int64_t paddedCols, uint16_t* out) {
  parallelFor(m, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float* row = x + i * ldx;
      uint16_t* dst = out + i * paddedCols;
      for (int64_t k = 0; k < paddedCols; k += 32) {
        int64_t left = cols - k;
        __mmask16 lo = left >= 16 ? 0xffff : (left > 0 ? __mmask16((1u << left) - 1) : 0);
        __mmask16 hi = left >= 32 ? 0xffff : (left > 16 ? __mmask16((1u << (left - 16)) - 1) : 0);
        __m512 a = _mm512_maskz_loadu_ps(lo, row + k);
        __m512 b = _mm512_maskz_loadu_ps(hi, row + k + 16);
        // paddedCols is a multiple of 16, not 32: the last store may cover only the low 16 values.
        __mmask32 store = paddedCols - k >= 32 ? ~__mmask32(0) : __mmask32(0xffff);
        _mm512_mask_storeu_epi16(dst + k, store, (__m512i)_mm512_cvtne2ps_pbh(b, a));
      }
    }
  });
}

namespace {

// y[R, 64] (+)= xPairs[R, pairs] · chunk, where chunk is `pairs` k pairs of one 64-row weight block.
template <int R>
void dotTile(const uint32_t* xPairs, int64_t ldPairs, const uint16_t* chunk, int64_t pairs, float* y, int64_t ldy,
             const BlockMasks& masks, bool accumulate) {
  __m512 acc[R][4];
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < 4; ++j) {
      acc[i][j] = accumulate ? _mm512_maskz_loadu_ps(masks.group[j], y + i * ldy + 16 * j) : _mm512_setzero_ps();
    }
  }
  for (int64_t p = 0; p < pairs; ++p) {
    const uint16_t* wp = chunk + p * 128;
    __m512bh w[4];
    for (int j = 0; j < 4; ++j) w[j] = (__m512bh)_mm512_load_si512(wp + 32 * j);
    for (int i = 0; i < R; ++i) {
      __m512bh xv = (__m512bh)_mm512_set1_epi32(int(xPairs[i * ldPairs + p]));
      for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], w[j], xv);
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < 4; ++j) _mm512_mask_storeu_ps(y + i * ldy + 16 * j, masks.group[j], acc[i][j]);
  }
}

using DotTileFn = void (*)(const uint32_t*, int64_t, const uint16_t*, int64_t, float*, int64_t, const BlockMasks&,
                           bool);
constexpr DotTileFn kDotTiles[kDotTileRows + 1] = {nullptr,     dotTile<1>, dotTile<2>, dotTile<3>,
                                                   dotTile<4>, dotTile<5>, dotTile<6>};

// Rows [rowBegin, rowEnd) of y against weight block `block`. A single tile streams all of K at once (decode);
// several tiles walk K in L1-sized chunks, every tile reusing the chunk, partial sums kept in y.
void dotBlock(const uint32_t* xPairs, int64_t pairs, const PackedWeight& w, int64_t block, int64_t rowBegin,
              int64_t rowEnd, float* y, int64_t ldy) {
  const uint16_t* base = w.bf16Block(block);
  BlockMasks masks = blockMasks(std::min<int64_t>(kMatmulRowBlock, w.rows() - block * kMatmulRowBlock));
  float* yBlock = y + block * kMatmulRowBlock;
  int64_t chunkPairs = rowEnd - rowBegin <= kDotTileRows ? pairs : kDotChunkPairs;
  for (int64_t p0 = 0; p0 < pairs; p0 += chunkPairs) {
    int64_t chunk = std::min(chunkPairs, pairs - p0);
    for (int64_t i = rowBegin; i < rowEnd; i += kDotTileRows) {
      int rows = int(std::min<int64_t>(kDotTileRows, rowEnd - i));
      kDotTiles[rows](xPairs + i * pairs + p0, pairs, base + p0 * 128, chunk, yBlock + i * ldy, ldy, masks, p0 > 0);
    }
  }
}

}  // namespace

void matmulBf16Dot(const float* x, int64_t ldx, int64_t m, const PackedWeight& w, float* y, int64_t ldy) {
  int64_t paddedCols = w.paddedCols();
  auto* xBf16 = static_cast<uint16_t*>(threadScratch(ScratchSlot::kActivations, size_t(m * paddedCols) * 2));
  roundRowsToBf16(x, ldx, m, w.cols(), paddedCols, xBf16);
  const auto* xPairs = reinterpret_cast<const uint32_t*>(xBf16);
  int64_t pairs = paddedCols / 2;
  int64_t blocks = w.rowBlocks();
  int64_t tiles = (m + kDotTileRows - 1) / kDotTileRows;
  int64_t parts = rowParts(blocks, m, kDotTileRows, kernelThreads());
  parallelFor(blocks * parts, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      IndexRange tileRange = splitRange(tiles, int(parts), int(item % parts));
      int64_t rowBegin = tileRange.begin * kDotTileRows;
      int64_t rowEnd = std::min(m, tileRange.end * kDotTileRows);
      if (rowBegin < rowEnd) dotBlock(xPairs, pairs, w, item / parts, rowBegin, rowEnd, y, ldy);
    }
  });
}

}  // namespace phx::matmul_detail
