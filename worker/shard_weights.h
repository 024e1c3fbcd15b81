// One rank's weights: the slices of each tensor its RankShard names, read from the checkpoint tensor by tensor,
// packed for the kernels and the raw copy freed before the next tensor is read, so the peak memory is the packed
// size plus one tensor. Which slice of which tensor a shard needs is data (partition/tensor_table.h), so a
// cluster only computes other shards.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "model/config.h"
#include "partition/rank_shard.h"
#include "partition/tensor_table.h"
#include "worker/packed_matrix.h"

namespace phx {

struct LayerWeights {
  std::vector<float> inputNorm;  // [hidden]
  PackedMatrix qkv;              // [(q + 2 kv) heads * headDim, hidden]
  PackedMatrix oProj;            // [hidden, q heads * headDim]: row-parallel, output is a partial sum
  std::vector<float> postNorm;   // [hidden]
  PackedMatrix gateUp;           // [2 * columns, hidden]: gate | up
  PackedMatrix down;             // [hidden, columns]: row-parallel, output is a partial sum
};

struct ShardWeights {
  ModelConfig config;
  RankShard shard;
  std::vector<LayerWeights> layers;   // shard.layers, in order
  std::vector<uint16_t> embedding;    // [vocab rows, hidden] BF16: a lookup reads one row per token
  std::vector<float> finalNorm;       // [hidden]
  PackedMatrix lmHead;                // [vocab rows, hidden]
  int64_t bytes = 0;                  // resident weight bytes, as loaded
};

// bytesDone, bytesTotal (of the checkpoint slices), the tensor just loaded
using LoadProgress = std::function<void(int64_t bytesDone, int64_t bytesTotal, const std::string& tensor)>;

// Validates the shard against the checkpoint's config, then loads its slices. `matmulWeights` is the type the
// matrices are packed in: kBf16 (as stored), or kInt8, quantized per output row while loading, piece by piece (so
// the peak stays the packed INT8 model plus one BF16 piece). A quantized checkpoint (model/quantized_checkpoint.h)
// holds I8 matrices and their scales: they are packed as they are, with no quantization, and need kInt8. Each rank
// quantizes only its slice (a column slice gets scales of its own columns). Throws phx::Error naming the tensor
// (a dtype that cannot be loaded as asked) or the shard field at fault.
// `requested`, or where unset the checkpoint's own type: INT8 for a quantized checkpoint, else BF16.
WeightType resolveWeightType(const Checkpoint& checkpoint, std::optional<WeightType> requested);

ShardWeights loadShardWeights(const Checkpoint& checkpoint, const RankShard& shard,
                              const LoadProgress& progress = nullptr, WeightType matmulWeights = WeightType::kBf16);

}  // namespace phx
