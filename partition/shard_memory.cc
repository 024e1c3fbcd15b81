#include "partition/shard_memory.h"

namespace phx {
namespace {

int64_t roundUp(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

constexpr int64_t kBf16Bytes = 2;
constexpr int64_t kF32Bytes = 4;
constexpr int64_t kInt8RowExtraBytes = 4 + 4;  // f32 scale + int32 sum of the row's values

}  // namespace

int64_t packedBf16Bytes(int64_t rows, int64_t cols) {
  return roundUp(rows, kPackedRowBlock) * roundUp(cols, kPackedColBlock) * kBf16Bytes;
}

int64_t packedInt8Bytes(int64_t rows, int64_t cols) {
  return roundUp(rows, kPackedRowBlock) * (roundUp(cols, kPackedColBlock) + kInt8RowExtraBytes);
}

int64_t packedMatrixBytes(int64_t rows, int64_t cols, MatrixStorage storage) {
  return storage == MatrixStorage::kInt8 ? packedInt8Bytes(rows, cols) : packedBf16Bytes(rows, cols);
}

int64_t shardWeightBytes(const ModelConfig& c, const RankShard& s, MatrixStorage matrices) {
  const auto packed = [matrices](int64_t rows, int64_t cols) { return packedMatrixBytes(rows, cols, matrices); };
  const int64_t hidden = c.hiddenSize, hd = c.headDim();
  const int64_t qRows = s.queryHeads.count * hd, kvRows = s.kvHeads.count * hd, columns = s.mlpColumns.count;
  const int64_t perLayer = 2 * hidden * kF32Bytes                      // input and post-attention norms
                           + packed(qRows + 2 * kvRows, hidden)  // qkv: its Q | K | V heads
                           + packed(hidden, qRows)               // o_proj: its heads' columns
                           + packed(2 * columns, hidden)         // gate_up: its gate | up rows
                           + packed(hidden, columns);            // down: its columns
  int64_t bytes = s.layers.count * perLayer;
  if (s.firstStage) bytes += s.vocabRows.count * hidden * kBf16Bytes;  // raw rows: a lookup reads one per token
  if (s.lastStage) bytes += hidden * kF32Bytes + packed(s.vocabRows.count, hidden);
  return bytes;
}

int64_t shardKvBytesPerToken(const ModelConfig& c, const RankShard& s, int64_t bytesPerElement) {
  return 2 * s.kvHeads.count * c.headDim() * s.layers.count * bytesPerElement;
}

}  // namespace phx
