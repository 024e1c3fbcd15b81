// fp32 activations x BF16 or F32 weights with f32 FMA. BF16 pairs are widened exactly (a BF16 is the top half of
// an f32): the low element of a pair by a 16-bit left shift, the high one by masking. Every output accumulates
// k = 0, 1, 2, ... in order with one FMA each, so the widening-in-registers tile (few rows) and the widened-panel
// tile (many rows) give bit-identical results.

#include <algorithm>
#include <cstring>

#include "kernels/matmul_paths.h"
#include "kernels/scratch.h"
#include "kernels/simd.h"
#include "kernels/threading.h"
#include "kernels/vec_math.h"

namespace phx::matmul_detail {
namespace {

using vec::widenHighBf16;
using vec::widenLowBf16;

template <int R>
void loadAccumulators(__m512 (&acc)[R][4], const float* y, int64_t ldy, const BlockMasks& masks, bool accumulate) {
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < 4; ++j) {
      acc[i][j] = accumulate ? _mm512_maskz_loadu_ps(masks.group[j], y + i * ldy + 16 * j) : _mm512_setzero_ps();
    }
  }
}

template <int R>
void storeAccumulators(const __m512 (&acc)[R][4], float* y, int64_t ldy, const BlockMasks& masks) {
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < 4; ++j) _mm512_mask_storeu_ps(y + i * ldy + 16 * j, masks.group[j], acc[i][j]);
  }
}

// y[R, 64] (+)= x[R, 2 * pairs] · chunk, chunk being BF16 pairs of one 64-row block, widened in registers.
template <int R>
void widenTile(const float* x, int64_t ldx, const uint16_t* chunk, int64_t pairs, float* y, int64_t ldy,
               const BlockMasks& masks, bool accumulate) {
  __m512 acc[R][4];
  loadAccumulators(acc, y, ldy, masks, accumulate);
  for (int64_t p = 0; p < pairs; ++p) {
    __m512i raw[4];
    for (int j = 0; j < 4; ++j) raw[j] = _mm512_load_si512(chunk + p * 128 + 32 * j);
    __m512 low[4];
    for (int j = 0; j < 4; ++j) low[j] = widenLowBf16(raw[j]);
    for (int i = 0; i < R; ++i) {
      __m512 xv = _mm512_set1_ps(x[i * ldx + 2 * p]);
      for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_fmadd_ps(xv, low[j], acc[i][j]);
    }
    __m512 high[4];
    for (int j = 0; j < 4; ++j) high[j] = widenHighBf16(raw[j]);
    for (int i = 0; i < R; ++i) {
      __m512 xv = _mm512_set1_ps(x[i * ldx + 2 * p + 1]);
      for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_fmadd_ps(xv, high[j], acc[i][j]);
    }
  }
  storeAccumulators(acc, y, ldy, masks);
}

// y[R, 64] (+)= x[R, cols] · panel, panel being `cols` rows of 64 f32 (a packed F32 block or a widened chunk).
template <int R>
void panelTile(const float* x, int64_t ldx, const float* panel, int64_t cols, float* y, int64_t ldy,
               const BlockMasks& masks, bool accumulate) {
  __m512 acc[R][4];
  loadAccumulators(acc, y, ldy, masks, accumulate);
  for (int64_t k = 0; k < cols; ++k) {
    __m512 w[4];
    for (int j = 0; j < 4; ++j) w[j] = _mm512_load_ps(panel + k * 64 + 16 * j);
    for (int i = 0; i < R; ++i) {
      __m512 xv = _mm512_set1_ps(x[i * ldx + k]);
      for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_fmadd_ps(xv, w[j], acc[i][j]);
    }
  }
  storeAccumulators(acc, y, ldy, masks);
}

template <typename W>
using TileFn = void (*)(const float*, int64_t, const W*, int64_t, float*, int64_t, const BlockMasks&, bool);
constexpr TileFn<uint16_t> kWidenTiles[kWidenTileRows + 1] = {nullptr, widenTile<1>, widenTile<2>, widenTile<3>,
                                                              widenTile<4>};
constexpr TileFn<float> kPanelTiles[kFmaTileRows + 1] = {nullptr,       panelTile<1>, panelTile<2>, panelTile<3>,
                                                         panelTile<4>, panelTile<5>, panelTile<6>};

// A chunk of `pairs` BF16 pairs -> 2 * pairs rows of 64 f32: [p][n][2] -> [2p + e][n].
void widenChunk(const uint16_t* chunk, int64_t pairs, float* panel) {
  for (int64_t p = 0; p < pairs; ++p) {
    for (int j = 0; j < 4; ++j) {
      __m512i raw = _mm512_load_si512(chunk + p * 128 + 32 * j);
      _mm512_store_ps(panel + (2 * p) * 64 + 16 * j, widenLowBf16(raw));
      _mm512_store_ps(panel + (2 * p + 1) * 64 + 16 * j, widenHighBf16(raw));
    }
  }
}

// Few rows: one pass over K per tile, weights widened in registers (BF16) or read as they are (F32).
void fmaBlockStreaming(const float* x, int64_t ldx, const PackedWeight& w, int64_t block, int64_t rowBegin,
                       int64_t rowEnd, float* yBlock, int64_t ldy, const BlockMasks& masks) {
  int64_t cols = w.paddedCols();
  for (int64_t i = rowBegin; i < rowEnd;) {
    if (w.type() == WeightType::kBf16) {
      int rows = int(std::min<int64_t>(kWidenTileRows, rowEnd - i));
      kWidenTiles[rows](x + i * ldx, ldx, w.bf16Block(block), cols / 2, yBlock + i * ldy, ldy, masks, false);
      i += rows;
    } else {
      int rows = int(std::min<int64_t>(kFmaTileRows, rowEnd - i));
      kPanelTiles[rows](x + i * ldx, ldx, w.f32Block(block), cols, yBlock + i * ldy, ldy, masks, false);
      i += rows;
    }
  }
}

// Many rows: K in chunks; a BF16 chunk is widened once into an L1 panel that every row tile reuses.
void fmaBlockChunked(const float* x, int64_t ldx, const PackedWeight& w, int64_t block, int64_t rowBegin,
                     int64_t rowEnd, float* yBlock, int64_t ldy, const BlockMasks& masks) {
  int64_t cols = w.paddedCols();
  auto* widened = static_cast<float*>(threadScratch(ScratchSlot::kWeightPanel, kFmaChunkCols * 64 * sizeof(float)));
  for (int64_t k0 = 0; k0 < cols; k0 += kFmaChunkCols) {
    int64_t chunk = std::min(kFmaChunkCols, cols - k0);
    const float* panel = w.type() == WeightType::kF32 ? w.f32Block(block) + k0 * 64 : widened;
    if (w.type() == WeightType::kBf16) widenChunk(w.bf16Block(block) + k0 * 64, chunk / 2, widened);
    for (int64_t i = rowBegin; i < rowEnd; i += kFmaTileRows) {
      int rows = int(std::min<int64_t>(kFmaTileRows, rowEnd - i));
      kPanelTiles[rows](x + i * ldx + k0, ldx, panel, chunk, yBlock + i * ldy, ldy, masks, k0 > 0);
    }
  }
}

// The kernels read x up to the padded K: copy x with zero padding when K is not already a multiple of 16.
const float* paddedActivations(const float* x, int64_t& ldx, int64_t m, int64_t cols, int64_t paddedCols) {
  if (cols == paddedCols) return x;
  auto* padded = static_cast<float*>(threadScratch(ScratchSlot::kActivations, size_t(m * paddedCols) * 4));
  for (int64_t i = 0; i < m; ++i) {
    std::memcpy(padded + i * paddedCols, x + i * ldx, size_t(cols) * 4);
    std::memset(padded + i * paddedCols + cols, 0, size_t(paddedCols - cols) * 4);
  }
  ldx = paddedCols;
  return padded;
}

}  // namespace

void matmulF32Fma(const float* x, int64_t ldx, int64_t m, const PackedWeight& w, float* y, int64_t ldy) {
  x = paddedActivations(x, ldx, m, w.cols(), w.paddedCols());
  int64_t blocks = w.rowBlocks();
  int64_t tiles = (m + kFmaTileRows - 1) / kFmaTileRows;
  int64_t parts = rowParts(blocks, m, kFmaTileRows, kernelThreads());
  parallelFor(blocks * parts, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      int64_t block = item / parts;
      IndexRange tileRange = splitRange(tiles, int(parts), int(item % parts));
      int64_t rowBegin = tileRange.begin * kFmaTileRows;
      int64_t rowEnd = std::min(m, tileRange.end() * kFmaTileRows);
      if (rowBegin >= rowEnd) continue;
      BlockMasks masks = blockMasks(std::min<int64_t>(kPackedRowBlock, w.rows() - block * kPackedRowBlock));
      float* yBlock = y + block * kPackedRowBlock;
      if (rowEnd - rowBegin <= kWidenTileRows) {
        fmaBlockStreaming(x, ldx, w, block, rowBegin, rowEnd, yBlock, ldy, masks);
      } else {
        fmaBlockChunked(x, ldx, w, block, rowBegin, rowEnd, yBlock, ldy, masks);
      }
    }
  });
}

}  // namespace phx::matmul_detail
