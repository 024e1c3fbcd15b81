#include "kernels/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/kernel_check.h"
#include "kernels/scratch.h"
#include "kernels/simd.h"
#include "kernels/threading.h"
#include "kernels/vec_math.h"

namespace phx {
namespace kernel_detail {
void requireSequences(const AttentionSequence* sequences, int64_t count, const PagedKv& cache);
}  // namespace kernel_detail

namespace {

constexpr int kTileQueries = 8;      // queries sharing each K/V vector load
constexpr int64_t kChunkTokens = 16;  // new tokens per work item

struct Query {
  const float* q;
  float* out;
  int64_t position;
};

// One work item: a sequence's chunk of new tokens against one KV head (all query heads that read it).
struct WorkItem {
  int64_t sequence;
  int64_t kvHead;
  int64_t tokenBegin;
  int64_t tokenEnd;
};

inline __m512 load16(const float* p, __mmask16 mask) { return _mm512_maskz_loadu_ps(mask, p); }
inline __m512 load16(const uint16_t* p, __mmask16 mask) { return vec::maskLoadBf16(mask, p); }
inline __m512 load16(const int8_t* p, __mmask16 mask) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mask, p)));
}

// scores[r] = q_r · keys for one group of up to 16 keys: keysT points at the group's first key of dimension 0;
// dimension d is blockSize elements further. One key vector load serves all R queries.
template <typename T, int R>
void scoreGroup(const Query* queries, const T* keysT, int64_t blockSize, int64_t headDim, __mmask16 keyMask,
                __m512 (&scores)[R]) {
  for (int r = 0; r < R; ++r) scores[r] = _mm512_setzero_ps();
  for (int64_t d = 0; d < headDim; ++d) {
    __m512 keys = load16(keysT + d * blockSize, keyMask);
    for (int r = 0; r < R; ++r) scores[r] = _mm512_fmadd_ps(_mm512_set1_ps(queries[r].q[d]), keys, scores[r]);
  }
}

// acc_r = acc_r * correction_r + sum_j p[r][j] * value j, for `keys` value rows headDim apart. Each value vector
// is loaded once for all R queries: V vectors of 16 dimensions per pass keep R x V accumulators in registers.
template <typename T, int R>
void accumulateValues(float* acc, int64_t headDim, const float* correction, const float (*p)[16], int keys,
                      const T* values) {
  constexpr int V = R <= 4 ? 4 : 2;
  for (int64_t d0 = 0; d0 < headDim; d0 += 16 * V) {
    __mmask16 masks[V];
    __m512 o[R][V];
    for (int v = 0; v < V; ++v) masks[v] = vec::firstLanes(headDim - d0 - 16 * v);
    for (int r = 0; r < R; ++r) {
      for (int v = 0; v < V; ++v) {
        __m512 old = _mm512_maskz_loadu_ps(masks[v], acc + r * headDim + d0 + 16 * v);
        o[r][v] = _mm512_mul_ps(old, _mm512_set1_ps(correction[r]));
      }
    }
    for (int j = 0; j < keys; ++j) {
      __m512 value[V];
      for (int v = 0; v < V; ++v) value[v] = load16(values + j * headDim + d0 + 16 * v, masks[v]);
      for (int r = 0; r < R; ++r) {
        __m512 weight = _mm512_set1_ps(p[r][j]);
        for (int v = 0; v < V; ++v) o[r][v] = _mm512_fmadd_ps(weight, value[v], o[r][v]);
      }
    }
    for (int r = 0; r < R; ++r) {
      for (int v = 0; v < V; ++v) _mm512_mask_storeu_ps(acc + r * headDim + d0 + 16 * v, masks[v], o[r][v]);
    }
  }
}

// Blocks are scattered, so the hardware prefetcher loses the stream at every block boundary: fetch the next
// block's keys and values of this head while the current one is computed.
template <typename T>
void prefetchHead(const PagedKv& cache, int32_t block, int64_t headOffset) {
  int64_t bytes = cache.shape.headDim * cache.shape.blockSize * int64_t(sizeof(T));
  const char* keys =
      reinterpret_cast<const char*>(static_cast<const T*>(cache.keys) + block * cache.blockStride + headOffset);
  const char* values =
      reinterpret_cast<const char*>(static_cast<const T*>(cache.values) + block * cache.blockStride + headOffset);
  for (int64_t i = 0; i < bytes; i += 64) {
    _mm_prefetch(keys + i, _MM_HINT_T0);
    _mm_prefetch(values + i, _MM_HINT_T0);
  }
}

// Online softmax over the keys of a tile of R queries (same KV head, positions ascending). Keys past a query's
// position get weight 0; keys past the tile's last position are never read (they may hold anything).
template <typename T, int R>
void attendTile(const Query* queries, const WorkItem& item, const AttentionSequence& seq, const PagedKv& cache,
                float scale, float* acc) {
  const KvBlockShape& s = cache.shape;
  float runningMax[R], runningSum[R], correction[R];
  alignas(64) float p[R][16];
  for (int r = 0; r < R; ++r) {
    runningMax[r] = -INFINITY;
    runningSum[r] = 0.0f;
  }
  std::fill_n(acc, R * s.headDim, 0.0f);
  int64_t lastPosition = queries[R - 1].position;
  int64_t headOffset = item.kvHead * s.headDim * s.blockSize;  // same for keys and values
  for (int64_t blk = 0; blk * s.blockSize <= lastPosition; ++blk) {
    int64_t offset = seq.blockTable[blk] * cache.blockStride + headOffset;
    const T* keysT = static_cast<const T*>(cache.keys) + offset;
    const T* values = static_cast<const T*>(cache.values) + offset;
    // INT8: the 16 keys' (values') scales of this head, beside their dimensions in the block.
    const float* keyScales = nullptr;
    const float* valueScales = nullptr;
    if constexpr (std::is_same_v<T, int8_t>) {
      keyScales = cache.keyScales(seq.blockTable[blk]) + item.kvHead * s.blockSize;
      valueScales = cache.valueScales(seq.blockTable[blk]) + item.kvHead * s.blockSize;
    }
    if ((blk + 1) * s.blockSize <= lastPosition) prefetchHead<T>(cache, seq.blockTable[blk + 1], headOffset);
    for (int64_t j0 = 0; j0 < s.blockSize && blk * s.blockSize + j0 <= lastPosition; j0 += 16) {
      int64_t firstKey = blk * s.blockSize + j0;
      int keys = int(std::min({int64_t(16), s.blockSize - j0, lastPosition - firstKey + 1}));
      __m512 scores[R];
      scoreGroup<T, R>(queries, keysT + j0, s.blockSize, s.headDim, vec::firstLanes(keys), scores);
      if constexpr (std::is_same_v<T, int8_t>) {
        const __m512 scale = _mm512_maskz_loadu_ps(vec::firstLanes(keys), keyScales + j0);
        for (int r = 0; r < R; ++r) scores[r] = _mm512_mul_ps(scores[r], scale);
      }
      for (int r = 0; r < R; ++r) {
        // The first key is position 0 <= every query's position, so runningMax is finite after the first group.
        __mmask16 visible = vec::firstLanes(std::min<int64_t>(keys, queries[r].position - firstKey + 1));
        __m512 scaled = _mm512_mul_ps(scores[r], _mm512_set1_ps(scale));
        float groupMax = vec::max(_mm512_mask_blend_ps(visible, _mm512_set1_ps(-INFINITY), scaled));
        float newMax = std::max(runningMax[r], groupMax);
        correction[r] = newMax == runningMax[r] ? 1.0f : std::exp(runningMax[r] - newMax);
        __m512 weights = _mm512_maskz_mov_ps(visible, vec::exp(_mm512_sub_ps(scaled, _mm512_set1_ps(newMax))));
        runningSum[r] = runningSum[r] * correction[r] + vec::sum(weights);
        if constexpr (std::is_same_v<T, int8_t>) {  // the values' scales folded into their weights
          weights = _mm512_mul_ps(weights, _mm512_maskz_loadu_ps(vec::firstLanes(keys), valueScales + j0));
        }
        _mm512_store_ps(p[r], weights);
        runningMax[r] = newMax;
      }
      accumulateValues<T, R>(acc, s.headDim, correction, p, keys, values + j0 * s.headDim);
    }
  }
  for (int r = 0; r < R; ++r) {
    float inverse = 1.0f / runningSum[r];
    for (int64_t d = 0; d < s.headDim; ++d) queries[r].out[d] = acc[r * s.headDim + d] * inverse;
  }
}

template <typename T>
using TileFn = void (*)(const Query*, const WorkItem&, const AttentionSequence&, const PagedKv&, float, float*);
template <typename T>
constexpr TileFn<T> kTiles[kTileQueries + 1] = {nullptr,            attendTile<T, 1>, attendTile<T, 2>,
                                                attendTile<T, 3>, attendTile<T, 4>, attendTile<T, 5>,
                                                attendTile<T, 6>, attendTile<T, 7>, attendTile<T, 8>};

void runItem(const WorkItem& item, const std::vector<int32_t>& groupHeads, const float* q, int64_t qStride,
             const AttentionSequence& seq, const AttentionHeads& heads, const PagedKv& cache, float* out,
             int64_t outStride) {
  std::vector<Query> queries;
  queries.reserve(size_t((item.tokenEnd - item.tokenBegin)) * groupHeads.size());
  for (int64_t t = item.tokenBegin; t < item.tokenEnd; ++t) {
    int64_t row = seq.firstRow + t;
    for (int32_t h : groupHeads) {
      queries.push_back({q + row * qStride + h * heads.headDim, out + row * outStride + h * heads.headDim,
                         seq.cachedTokens + t});
    }
  }
  auto* acc = static_cast<float*>(threadScratch(ScratchSlot::kAttention, size_t(kTileQueries * heads.headDim) * 4));
  for (size_t i = 0; i < queries.size(); i += kTileQueries) {
    int count = int(std::min<size_t>(kTileQueries, queries.size() - i));
    if (cache.shape.type == KvType::kInt8) {
      kTiles<int8_t>[count](&queries[i], item, seq, cache, heads.scale, acc);
    } else if (cache.shape.type == KvType::kBf16) {
      kTiles<uint16_t>[count](&queries[i], item, seq, cache, heads.scale, acc);
    } else {
      kTiles<float>[count](&queries[i], item, seq, cache, heads.scale, acc);
    }
  }
}

void requireHeads(const AttentionHeads& heads, const PagedKv& cache) {
  PHX_KERNEL_REQUIRE(heads.qHeads > 0 && heads.headDim == cache.shape.headDim && heads.kvHeadOf != nullptr,
                     "attention: ", heads.qHeads, " query heads of dim ", heads.headDim, " against a cache of dim ",
                     cache.shape.headDim);
  PHX_KERNEL_REQUIRE(heads.scale > 0 && std::isfinite(heads.scale), "attention: scale must be positive, got ",
                     heads.scale);
  for (int64_t h = 0; h < heads.qHeads; ++h) {
    PHX_KERNEL_REQUIRE(heads.kvHeadOf[h] >= 0 && heads.kvHeadOf[h] < cache.shape.kvHeads, "attention: query head ",
                       h, " maps to KV head ", heads.kvHeadOf[h], ", outside the cache's ", cache.shape.kvHeads);
  }
}

}  // namespace

void attendPaged(const float* q, int64_t qStride, const AttentionSequence* sequences, int64_t sequenceCount,
                 const AttentionHeads& heads, const PagedKv& cache, float* out, int64_t outStride) {
  kernel_detail::requireSequences(sequences, sequenceCount, cache);
  requireHeads(heads, cache);
  int64_t width = heads.qHeads * heads.headDim;
  PHX_KERNEL_REQUIRE(qStride >= width && outStride >= width, "attention: q/out row strides ", qStride, "/",
                     outStride, " are below ", width);
  PHX_KERNEL_REQUIRE(q != nullptr && out != nullptr, "attention: null q or out");
  std::vector<std::vector<int32_t>> groupHeads(size_t(cache.shape.kvHeads));
  for (int32_t h = 0; h < int32_t(heads.qHeads); ++h) groupHeads[size_t(heads.kvHeadOf[h])].push_back(h);
  std::vector<WorkItem> items;
  for (int64_t i = 0; i < sequenceCount; ++i) {
    for (int64_t g = 0; g < cache.shape.kvHeads; ++g) {
      if (groupHeads[size_t(g)].empty()) continue;
      for (int64_t t = 0; t < sequences[i].newTokens; t += kChunkTokens) {
        items.push_back({i, g, t, std::min(sequences[i].newTokens, t + kChunkTokens)});
      }
    }
  }
  // Longest contexts first, so that the dynamic schedule does not end on one long item.
  std::stable_sort(items.begin(), items.end(), [&](const WorkItem& a, const WorkItem& b) {
    return sequences[a.sequence].cachedTokens + a.tokenEnd > sequences[b.sequence].cachedTokens + b.tokenEnd;
  });
  parallelForEach(int64_t(items.size()), [&](int64_t i) {
    const WorkItem& item = items[size_t(i)];
    runItem(item, groupHeads[size_t(item.kvHead)], q, qStride, sequences[item.sequence], heads, cache, out,
            outStride);
  });
}

void pagedAttention(const float* q, int64_t qStride, const float* k, const float* v, int64_t kvStride,
                    const AttentionSequence* sequences, int64_t sequenceCount, const AttentionHeads& heads,
                    const PagedKv& cache, float* out, int64_t outStride) {
  writeKv(k, v, kvStride, sequences, sequenceCount, cache);
  attendPaged(q, qStride, sequences, sequenceCount, heads, cache, out, outStride);
}

}  // namespace phx
