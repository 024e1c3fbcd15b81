// The paged KV cache as the attention kernel stores it. A layer's cache is a pool of fixed-size blocks; a sequence
// owns some blocks through its block table (the caller's business: block i of the table holds positions
// [i * blockSize, (i + 1) * blockSize)). Each block holds, for each of this rank's KV heads:
//   keys   [kvHeads][headDim][blockSize]  (transposed: one dimension of 16 consecutive keys is one vector, so
//                                          q·k for 16 keys is headDim FMAs with no horizontal sums)
//   values [kvHeads][blockSize][headDim]
// Elements are BF16 (default: half the memory and the bandwidth of decode attention; K and V rounded to nearest
// even, as a BF16 model's own activations are), F32, or INT8: each token's key (and value) vector of each head
// quantized symmetrically (kernels/quantize.h) with its own f32 scale; a block then ends with the scales,
//   scales [kvHeads][blockSize] f32   (after the keys of the block, and after its values: 16 consecutive keys'
//                                      scales are one vector, as their dimensions are)
// so keys and values each take headDim + 4 bytes per token and head: a quarter of F32 plus 4 bytes.
#pragma once

#include <cstdint>

#include "kernels/aligned_buffer.h"

namespace phx {

enum class KvType : uint8_t { kF32, kBf16, kInt8 };

const char* kvTypeName(KvType type);

struct KvBlockShape {
  int64_t kvHeads = 0;
  int64_t headDim = 0;
  int64_t blockSize = 0;  // tokens per block
  KvType type = KvType::kBf16;

  int64_t elementsPerBlock() const { return kvHeads * headDim * blockSize; }  // keys (or values) of one block
  int64_t elementBytes() const { return type == KvType::kInt8 ? 1 : (type == KvType::kBf16 ? 2 : 4); }
  // INT8: the per-token-per-head scales at the end of each block's keys (and values).
  int64_t scaleBytesPerBlock() const { return type == KvType::kInt8 ? kvHeads * blockSize * 4 : 0; }
  // Elements from one block to the next (for INT8, elements are bytes and the scales sit in between).
  int64_t blockStrideElements() const { return elementsPerBlock() + scaleBytesPerBlock() / elementBytes(); }
};

// One layer's cache: block b's keys at keys + b * blockStride elements, its values at values + b * blockStride.
struct PagedKv {
  KvBlockShape shape;
  void* keys = nullptr;
  void* values = nullptr;
  int64_t blockStride = 0;  // elements from one block to the next (>= shape.elementsPerBlock())

  // INT8: the scales of block b's keys (values): [kvHeads][blockSize] f32.
  const float* keyScales(int64_t block) const {
    return reinterpret_cast<const float*>(static_cast<const int8_t*>(keys) + block * blockStride +
                                          shape.elementsPerBlock());
  }
  const float* valueScales(int64_t block) const {
    return reinterpret_cast<const float*>(static_cast<const int8_t*>(values) + block * blockStride +
                                          shape.elementsPerBlock());
  }
  int64_t numBlocks = 0;
};

// Storage for `layers` layers x numBlocks blocks, reserved up front; pages become resident as blocks are written.
class PagedKvCache {
 public:
  PagedKvCache(const KvBlockShape& shape, int64_t layers, int64_t numBlocks);

  PagedKv layer(int64_t index);
  const KvBlockShape& shape() const { return shape_; }
  int64_t layers() const { return layers_; }
  int64_t numBlocks() const { return numBlocks_; }
  size_t bytes() const { return storage_.bytes(); }

 private:
  KvBlockShape shape_;
  int64_t layers_;
  int64_t numBlocks_;
  AlignedBuffer storage_;  // [layers][keys | values][numBlocks][elementsPerBlock]
};

// Where a sequence's new tokens are in a step and in the cache.
struct AttentionSequence {
  int64_t firstRow = 0;      // row of its first new token in q, k, v and out
  int64_t newTokens = 0;     // this step's tokens (a prefill chunk, or 1 when decoding)
  int64_t cachedTokens = 0;  // tokens already cached: the position of the first new token
  const int32_t* blockTable = nullptr;  // block ids covering positions [0, cachedTokens + newTokens)
  int64_t blockCount = 0;

  int64_t contextTokens() const { return cachedTokens + newTokens; }
};

// Stores each sequence's new keys and values (rows `kvStride` floats apart, kvHeads * headDim each: views into a
// fused QKV output) at their positions' slots.
void writeKv(const float* k, const float* v, int64_t kvStride, const AttentionSequence* sequences,
             int64_t sequenceCount, const PagedKv& cache);

}  // namespace phx
