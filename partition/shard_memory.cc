#include "partition/shard_memory.h"

namespace phx {
namespace {

int64_t roundUp(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

constexpr int64_t kBf16Bytes = 2;
constexpr int64_t kF32Bytes = 4;

}  // namespace

int64_t packedBf16Bytes(int64_t rows, int64_t cols) {
  return roundUp(rows, kPackedRowBlock) * roundUp(cols, kPackedColBlock) * kBf16Bytes;
}

int64_t shardWeightBytes(const ModelConfig& c, const RankShard& s) {
  const int64_t hidden = c.hiddenSize, hd = c.headDim();
  const int64_t qRows = s.queryHeads.count * hd, kvRows = s.kvHeads.count * hd, columns = s.mlpColumns.count;
  const int64_t perLayer = 2 * hidden * kF32Bytes                      // input and post-attention norms
                           + packedBf16Bytes(qRows + 2 * kvRows, hidden)  // qkv: its Q | K | V heads
                           + packedBf16Bytes(hidden, qRows)               // o_proj: its heads' columns
                           + packedBf16Bytes(2 * columns, hidden)         // gate_up: its gate | up rows
                           + packedBf16Bytes(hidden, columns);            // down: its columns
  int64_t bytes = s.layers.count * perLayer;
  if (s.firstStage) bytes += s.vocabRows.count * hidden * kBf16Bytes;  // raw rows: a lookup reads one per token
  if (s.lastStage) bytes += hidden * kF32Bytes + packedBf16Bytes(s.vocabRows.count, hidden);
  return bytes;
}

int64_t shardKvBytesPerToken(const ModelConfig& c, const RankShard& s, int64_t bytesPerElement) {
  return 2 * s.kvHeads.count * c.headDim() * s.layers.count * bytesPerElement;
}

}  // namespace phx
