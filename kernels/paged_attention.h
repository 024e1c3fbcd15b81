// Causal grouped-query attention over the paged KV cache, for a batch of sequences that each add some new tokens
// at some position: prefill chunks and single decode tokens mixed in one call (continuous batching).
//
// For each new token t of a sequence (position p = cachedTokens + t) and each query head h:
//   out[t, h] = softmax_j(scale * q[t, h] · K[j, g]) V[j, g] over the cached positions j <= p, g = kvHeadOf[h].
// Softmax is fp32 and online (running max and sum per query, one pass over the keys, any context length).
// Work is split over (sequence, KV head, chunk of 16 tokens) with dynamic scheduling: each query head that shares
// a KV head reads the same K/V blocks while they are in L1. Results do not depend on the thread count.
#pragma once

#include <cstdint>

#include "kernels/kv_cache.h"

namespace phx {

struct AttentionHeads {
  int64_t qHeads = 0;              // this rank's query heads
  int64_t headDim = 0;
  const int32_t* kvHeadOf = nullptr;  // [qHeads]: the local KV head (in [0, cache kvHeads)) each query head reads
  float scale = 0;                 // usually 1 / sqrt(headDim)
};

// q: rows `qStride` floats apart, qHeads * headDim each; out: rows `outStride` apart, qHeads * headDim each.
// Reads only the cache: call writeKv first for this step's keys and values (or use pagedAttention).
void attendPaged(const float* q, int64_t qStride, const AttentionSequence* sequences, int64_t sequenceCount,
                 const AttentionHeads& heads, const PagedKv& cache, float* out, int64_t outStride);

// writeKv then attendPaged: k and v rows `kvStride` apart (kvHeads * headDim each).
void pagedAttention(const float* q, int64_t qStride, const float* k, const float* v, int64_t kvStride,
                    const AttentionSequence* sequences, int64_t sequenceCount, const AttentionHeads& heads,
                    const PagedKv& cache, float* out, int64_t outStride);

}  // namespace phx
