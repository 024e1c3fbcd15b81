#include "kernels/kv_cache.h"

#include <cstring>

#include "kernels/kernel_check.h"
#include "kernels/quantize.h"
#include "kernels/roofline.h"
#include "kernels/threading.h"

namespace phx {
namespace {

uint16_t roundToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);  // NaN stays NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

template <typename T>
T convert(float value);
template <>
float convert<float>(float value) { return value; }
template <>
uint16_t convert<uint16_t>(float value) { return roundToBf16(value); }

// One token's keys and values into block `block` at offset `slot`.
template <typename T>
void storeToken(const float* k, const float* v, const PagedKv& cache, int64_t block, int64_t slot) {
  const KvBlockShape& s = cache.shape;
  T* keys = static_cast<T*>(cache.keys) + block * cache.blockStride;
  T* values = static_cast<T*>(cache.values) + block * cache.blockStride;
  for (int64_t g = 0; g < s.kvHeads; ++g) {
    T* headKeys = keys + g * s.headDim * s.blockSize;
    T* headValues = values + (g * s.blockSize + slot) * s.headDim;
    for (int64_t d = 0; d < s.headDim; ++d) {
      headKeys[d * s.blockSize + slot] = convert<T>(k[g * s.headDim + d]);
      headValues[d] = convert<T>(v[g * s.headDim + d]);
    }
  }
}

// INT8: each head's key and value vectors quantized with their own scale, stored after the block's elements.
void storeTokenInt8(const float* k, const float* v, const PagedKv& cache, int64_t block, int64_t slot) {
  const KvBlockShape& s = cache.shape;
  int8_t* keys = static_cast<int8_t*>(cache.keys) + block * cache.blockStride;
  int8_t* values = static_cast<int8_t*>(cache.values) + block * cache.blockStride;
  auto* keyScales = const_cast<float*>(cache.keyScales(block));
  auto* valueScales = const_cast<float*>(cache.valueScales(block));
  int8_t quantized[1024];
  PHX_KERNEL_REQUIRE(s.headDim <= 1024, "writeKv: INT8 KV supports head dims up to 1024, got ", s.headDim);
  for (int64_t g = 0; g < s.kvHeads; ++g) {
    keyScales[g * s.blockSize + slot] = quantizeF32RowInt8(k + g * s.headDim, s.headDim, quantized);
    int8_t* headKeys = keys + g * s.headDim * s.blockSize;
    for (int64_t d = 0; d < s.headDim; ++d) headKeys[d * s.blockSize + slot] = quantized[d];
    valueScales[g * s.blockSize + slot] =
        quantizeF32RowInt8(v + g * s.headDim, s.headDim, values + (g * s.blockSize + slot) * s.headDim);
  }
}

void requireSequence(const AttentionSequence& seq, int64_t index, const PagedKv& cache) {
  PHX_KERNEL_REQUIRE(seq.firstRow >= 0 && seq.newTokens >= 0 && seq.cachedTokens >= 0, "attention: sequence ", index,
                     " has negative rows or positions");
  int64_t blocksNeeded = (seq.contextTokens() + cache.shape.blockSize - 1) / cache.shape.blockSize;
  PHX_KERNEL_REQUIRE(seq.blockCount >= blocksNeeded && (blocksNeeded == 0 || seq.blockTable != nullptr),
                     "attention: sequence ", index, " holds ", seq.contextTokens(), " tokens but its block table has ",
                     seq.blockCount, " blocks of ", cache.shape.blockSize);
  for (int64_t b = 0; b < blocksNeeded; ++b) {
    PHX_KERNEL_REQUIRE(seq.blockTable[b] >= 0 && seq.blockTable[b] < cache.numBlocks, "attention: sequence ", index,
                       " block ", b, " is ", seq.blockTable[b], ", outside the pool's ", cache.numBlocks, " blocks");
  }
}

}  // namespace

const char* kvTypeName(KvType type) {
  return type == KvType::kInt8 ? "int8" : (type == KvType::kBf16 ? "bf16" : "f32");
}

PagedKvCache::PagedKvCache(const KvBlockShape& shape, int64_t layers, int64_t numBlocks)
    : shape_(shape), layers_(layers), numBlocks_(numBlocks) {
  requireKernelIsa();
  PHX_KERNEL_REQUIRE(shape.kvHeads > 0 && shape.headDim > 0 && shape.blockSize > 0 && layers > 0 && numBlocks > 0,
                     "PagedKvCache: kv heads ", shape.kvHeads, ", head dim ", shape.headDim, ", block size ",
                     shape.blockSize, ", layers ", layers, " and blocks ", numBlocks, " must all be positive");
  storage_ = AlignedBuffer(size_t(layers * 2 * numBlocks * shape.blockStrideElements() * shape.elementBytes()));
}

PagedKv PagedKvCache::layer(int64_t index) {
  PHX_KERNEL_REQUIRE(index >= 0 && index < layers_, "PagedKvCache: layer ", index, " of ", layers_);
  int64_t perHalf = numBlocks_ * shape_.blockStrideElements() * shape_.elementBytes();
  char* base = storage_.as<char>() + index * 2 * perHalf;
  return PagedKv{shape_, base, base + perHalf, shape_.blockStrideElements(), numBlocks_};
}

namespace kernel_detail {

void requireSequences(const AttentionSequence* sequences, int64_t count, const PagedKv& cache) {
  PHX_KERNEL_REQUIRE(count >= 0 && (count == 0 || sequences != nullptr), "attention: bad sequence list");
  PHX_KERNEL_REQUIRE(cache.keys != nullptr && cache.values != nullptr && cache.numBlocks > 0 &&
                         cache.blockStride >= cache.shape.elementsPerBlock(),
                     "attention: the cache view is empty or its block stride ", cache.blockStride, " is below ",
                     cache.shape.elementsPerBlock());
  for (int64_t i = 0; i < count; ++i) requireSequence(sequences[i], i, cache);
}

}  // namespace kernel_detail

void writeKv(const float* k, const float* v, int64_t kvStride, const AttentionSequence* sequences,
             int64_t sequenceCount, const PagedKv& cache) {
  kernel_detail::requireSequences(sequences, sequenceCount, cache);
  const KvBlockShape& s = cache.shape;
  PHX_KERNEL_REQUIRE(kvStride >= s.kvHeads * s.headDim, "writeKv: row stride ", kvStride, " is below ", s.kvHeads,
                     " heads of ", s.headDim);
  PHX_KERNEL_REQUIRE(k != nullptr && v != nullptr, "writeKv: null keys or values");
  for (int64_t i = 0; i < sequenceCount; ++i) {
    const AttentionSequence& seq = sequences[i];
    parallelFor(seq.newTokens, 16, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        int64_t position = seq.cachedTokens + t;
        int64_t block = seq.blockTable[position / s.blockSize];
        const float* kRow = k + (seq.firstRow + t) * kvStride;
        const float* vRow = v + (seq.firstRow + t) * kvStride;
        if (s.type == KvType::kInt8) {
          storeTokenInt8(kRow, vRow, cache, block, position % s.blockSize);
        } else if (s.type == KvType::kBf16) {
          storeToken<uint16_t>(kRow, vRow, cache, block, position % s.blockSize);
        } else {
          storeToken<float>(kRow, vRow, cache, block, position % s.blockSize);
        }
      }
    });
  }
}

}  // namespace phx
