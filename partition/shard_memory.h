// What a RankShard costs in memory, computed from the config alone (no checkpoint, no kernels): the bytes the
// worker's loader (worker/shard_weights.cc) will hold for its weights, and its KV cache per token. A plan checks
// these against each rank's budget before any worker reads a byte; tests/partition compares shardWeightBytes with
// what loadShardWeights really holds.
#pragma once

#include <cstdint>

#include "model/config.h"
#include "partition/rank_shard.h"

namespace phx {

// The packed weight layout of kernels/packed_weight.h, mirrored here because partition depends on no kernels: a
// matrix [rows, cols] is stored with rows padded to a multiple of kPackedRowBlock and cols to one of
// kPackedColBlock. A shard whose row counts are multiples of kPackedRowBlock wastes nothing on padding, which is
// why plans split MLP columns and vocab rows in such blocks.
inline constexpr int64_t kPackedRowBlock = 64;
inline constexpr int64_t kPackedColBlock = 16;

// How a shard's matrices are held: BF16 as stored, or INT8 (`--dtype int8`) with an f32 scale and an int32 sum of
// its values per padded row.
enum class MatrixStorage { kBf16, kInt8 };

// Bytes of one packed matrix [rows, cols].
int64_t packedBf16Bytes(int64_t rows, int64_t cols);
int64_t packedInt8Bytes(int64_t rows, int64_t cols);
int64_t packedMatrixBytes(int64_t rows, int64_t cols, MatrixStorage storage);

// Resident weight bytes of one shard: per layer two f32 norms and four packed matrices (qkv of its heads, o_proj of
// its heads' columns, gate|up of its columns, down of its columns); the embedding rows as raw BF16 on the first
// stage (in either storage); the f32 final norm and packed lm_head rows on the last.
int64_t shardWeightBytes(const ModelConfig& config, const RankShard& shard,
                         MatrixStorage matrices = MatrixStorage::kBf16);

// KV cache bytes one token of context costs the shard: K and V of its KV heads in each of its layers.
int64_t shardKvBytesPerToken(const ModelConfig& config, const RankShard& shard, int64_t bytesPerElement);

}  // namespace phx
