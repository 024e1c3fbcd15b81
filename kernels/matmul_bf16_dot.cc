// BF16 weights x BF16-rounded activations with vdpbf16ps, fp32 accumulation. Each 64-byte weight load holds 16
// output rows x one k pair; each x pair is broadcast to all lanes, so a tile of r rows x 64 columns is
// 4r independent accumulators and one weight load feeds r instructions.

#include <algorithm>

#include "kernels/matmul_paths.h"
#include "kernels/scratch.h"
#include "kernels/simd.h"
#include "kernels/threading.h"

namespace phx::matmul_detail {

void roundRowsToBf16(const float* x, int64_t ldx, int64_t m, int64_t cols, int64_t paddedCols, uint16_t* out) {
  // A few rows a thread: a decode batch of 16 rounds on both threads (rows are 10-70 KiB each).
  parallelFor(m, 4, [&](int64_t begin, int64_t end) {
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

// Weight bytes [next, end) to pull into L2 while a tile computes, spread evenly over its k pairs (see dotBlock).
struct PrefetchRange {
  const char* next = nullptr;
  const char* end = nullptr;
};

// y[R, 64] (+)= xPairs[R, pairs] · chunk, where chunk is `pairs` k pairs of one 64-row weight block.
template <int R>
void dotTile(const uint32_t* xPairs, int64_t ldPairs, const uint16_t* chunk, int64_t pairs, float* y, int64_t ldy,
             const BlockMasks& masks, bool accumulate, PrefetchRange prefetch) {
  __m512 acc[R][4];
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < 4; ++j) {
      acc[i][j] = accumulate ? _mm512_maskz_loadu_ps(masks.group[j], y + i * ldy + 16 * j) : _mm512_setzero_ps();
    }
  }
  // Bresenham-style: after pair p, (p + 1) * lines / pairs lines have been requested.
  int64_t lines = (prefetch.end - prefetch.next) / 64;
  int64_t credit = 0;
  for (int64_t p = 0; p < pairs; ++p) {
    for (credit += lines; credit >= pairs; credit -= pairs) {
      _mm_prefetch(prefetch.next, _MM_HINT_T1);
      prefetch.next += 64;
    }
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
                           bool, PrefetchRange);
constexpr DotTileFn kDotTiles[kDotTileRows + 1] = {nullptr,     dotTile<1>, dotTile<2>, dotTile<3>,
                                                   dotTile<4>, dotTile<5>, dotTile<6>};

// Rows [rowBegin, rowEnd) of y against weight block `block`. A single tile streams all of K at once (decode: the
// hardware prefetcher keeps up with one pass). Several tiles walk K in L2-sized chunks that every tile reuses,
// partial sums kept in y (exact: each output element still adds its k pairs in order, in one accumulator). Were
// each chunk fetched by its first tile alone, that tile would need memory at several times the average rate and
// stall; instead every tile prefetches its share of the next chunk (or of `nextBlock` after the last one), so the
// weight stream from memory runs evenly under all of the block's arithmetic.
void dotBlock(const uint32_t* xPairs, int64_t pairs, const PackedWeight& w, int64_t block, int64_t rowBegin,
              int64_t rowEnd, float* y, int64_t ldy, const uint16_t* nextBlock) {
  const uint16_t* base = w.bf16Block(block);
  BlockMasks masks = blockMasks(std::min<int64_t>(kPackedRowBlock, w.rows() - block * kPackedRowBlock));
  float* yBlock = y + block * kPackedRowBlock;
  int64_t rows = rowEnd - rowBegin;
  if (rows <= kDotTileRows) {
    kDotTiles[rows](xPairs + rowBegin * pairs, pairs, base, pairs, yBlock + rowBegin * ldy, ldy, masks, false, {});
    return;
  }
  // Tiles of nearly equal height (16 rows: 6, 5, 5): each then prefetches and computes at about the same rate.
  int64_t tiles = (rows + kDotTileRows - 1) / kDotTileRows;
  constexpr int64_t kPairElements = kPackedRowBlock * 2;  // one k pair of the block's 64 rows
  constexpr int64_t kLineBytes = 64;
  for (int64_t p0 = 0; p0 < pairs; p0 += kDotChunkPairs) {
    int64_t chunk = std::min(kDotChunkPairs, pairs - p0);
    bool last = p0 + chunk == pairs;
    const uint16_t* next = last ? nextBlock : base + (p0 + chunk) * kPairElements;
    int64_t nextPairs = next == nullptr ? 0 : std::min(kDotChunkPairs, last ? pairs : pairs - p0 - chunk);
    int64_t nextBytes = nextPairs * kPairElements * 2;
    int64_t shareBytes = (nextBytes / kLineBytes + tiles - 1) / tiles * kLineBytes;
    for (int64_t t = 0; t < tiles; ++t) {
      int64_t i = rowBegin + t * rows / tiles;
      int64_t tileRows = rowBegin + (t + 1) * rows / tiles - i;
      const char* shareBase = reinterpret_cast<const char*>(next);
      PrefetchRange share{shareBase + std::min(nextBytes, t * shareBytes),
                          shareBase + std::min(nextBytes, (t + 1) * shareBytes)};
      kDotTiles[tileRows](xPairs + i * pairs + p0, pairs, base + p0 * kPairElements, chunk, yBlock + i * ldy, ldy,
                          masks, p0 > 0, share);
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
      int64_t rowEnd = std::min(m, tileRange.end() * kDotTileRows);
      const uint16_t* nextBlock = item + 1 < end ? w.bf16Block((item + 1) / parts) : nullptr;
      if (rowBegin < rowEnd) dotBlock(xPairs, pairs, w, item / parts, rowBegin, rowEnd, y, ldy, nextBlock);
    }
  });
}

}  // namespace phx::matmul_detail
