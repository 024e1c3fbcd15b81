#include "partition/shard_memory.h"

#include "partition/tensor_table.h"

namespace phx {

int64_t shardWeightBytes(const ModelConfig& config, const RankShard& shard, WeightType matrices) {
  int64_t bytes = 0;
  for (const TensorSlice& slice : shardTensorSlices(config, shard)) bytes += residentBytes(slice, matrices);
  return bytes;
}

int64_t shardKvBytesPerToken(const ModelConfig& c, const RankShard& s, int64_t bytesPerElement) {
  return 2 * s.kvHeads.count * c.headDim() * s.layers.count * bytesPerElement;
}

}  // namespace phx
