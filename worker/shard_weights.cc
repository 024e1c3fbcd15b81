#include "worker/shard_weights.h"

#include <algorithm>
#include <utility>

#include "common/error.h"
#include "model/bf16.h"
#include "model/quantized_checkpoint.h"

namespace phx {
namespace {

std::string layerName(int64_t layer, const std::string& suffix) {
  return "model.layers." + std::to_string(layer) + "." + suffix;
}

// The six slices of one decoder layer, in LayerWeights order.
std::vector<TensorSlice> layerSlices(const ModelConfig& c, const RankShard& s, int64_t layer) {
  const int64_t hd = c.headDim(), hidden = c.hiddenSize, inter = c.intermediateSize;
  const ShardRange q{s.queryHeads.begin * hd, s.queryHeads.count * hd};
  const ShardRange k{c.qDim() + s.kvHeads.begin * hd, s.kvHeads.count * hd};
  const ShardRange v{c.qDim() + c.kvDim() + s.kvHeads.begin * hd, s.kvHeads.count * hd};
  const ShardRange gate = s.mlpColumns;
  const ShardRange up{inter + s.mlpColumns.begin, s.mlpColumns.count};
  const ShardRange all{0, hidden};
  return {
      {layerName(layer, "input_layernorm.weight"), SliceAxis::kRows, {all}, hidden, 1},
      {layerName(layer, "self_attn.qkv_proj.weight"), SliceAxis::kRows, {q, k, v}, q.count + 2 * k.count, hidden},
      {layerName(layer, "self_attn.o_proj.weight"), SliceAxis::kColumns, {q}, hidden, q.count},
      {layerName(layer, "post_attention_layernorm.weight"), SliceAxis::kRows, {all}, hidden, 1},
      {layerName(layer, "mlp.gate_up_proj.weight"), SliceAxis::kRows, {gate, up}, 2 * gate.count, hidden},
      {layerName(layer, "mlp.down_proj.weight"), SliceAxis::kColumns, {s.mlpColumns}, hidden, gate.count},
  };
}

TensorSlice embeddingSlice(const ModelConfig& c, const RankShard& s) {
  return {"model.embed_tokens.weight", SliceAxis::kRows, {s.vocabRows}, s.vocabRows.count, c.hiddenSize};
}
TensorSlice finalNormSlice(const ModelConfig& c) {
  return {"model.norm.weight", SliceAxis::kRows, {{0, c.hiddenSize}}, c.hiddenSize, 1};
}
TensorSlice lmHeadSlice(const ModelConfig& c, const RankShard& s) {
  return {"lm_head.weight", SliceAxis::kRows, {s.vocabRows}, s.vocabRows.count, c.hiddenSize};
}

// Slice rows [first, first + count) as rows of the tensor: the slice's rows are its segments' rows in turn.
std::vector<Segment> rowSegments(const TensorSlice& slice, int64_t first, int64_t count) {
  std::vector<Segment> rows;
  int64_t at = 0;  // slice row where the current segment starts
  for (const ShardRange& range : slice.segments) {
    const int64_t begin = std::max(first, at), end = std::min(first + count, at + range.count);
    if (begin < end) rows.push_back({range.begin + (begin - at), end - begin});
    at += range.count;
  }
  return rows;
}

// Bytes of a slice in the checkpoint: its elements in the tensor's dtype, plus the row scales of an INT8 matrix.
int64_t sliceBytes(const Checkpoint& checkpoint, const TensorSlice& slice) {
  const DType dtype = checkpoint.info(slice.name).dtype;
  return slice.rows * slice.cols * dtypeBytes(dtype) + (dtype == DType::kI8 ? slice.rows * 4 : 0);
}

// Reads slices in BF16 (or INT8 with scales): whole, or a piece of rows at a time for packing.
class SliceReader {
 public:
  SliceReader(const Checkpoint& checkpoint, int64_t bytesTotal, const LoadProgress& progress, WeightType matmulWeights)
      : checkpoint_(checkpoint), bytesTotal_(bytesTotal), progress_(progress), matmulWeights_(matmulWeights) {}

  std::vector<uint16_t> read(const TensorSlice& slice) {
    requireBf16(slice);
    std::vector<Segment> segments;
    for (const ShardRange& range : slice.segments) segments.push_back({range.begin, range.count});
    std::vector<uint16_t> raw(static_cast<size_t>(slice.rows * slice.cols));
    if (slice.axis == SliceAxis::kRows) {
      checkpoint_.copyRows(slice.name, segments, asBytes(raw));
    } else {
      checkpoint_.copyColumns(slice.name, segments, asBytes(raw));
    }
    advance(slice, raw.size() * sizeof(uint16_t));
    return raw;
  }

  // Packs piece by piece where the slice is whole rows of the tensor (row slices, and column slices that keep
  // every column); a column slice of a row-parallel rank is read whole (it is already a fraction of the tensor).
  PackedMatrix matrix(const TensorSlice& slice) {
    if (checkpoint_.info(slice.name).dtype == DType::kI8) return int8Matrix(slice);
    PackedMatrix packed{slice.rows, slice.cols, {}, {}};
    const auto& shape = checkpoint_.info(slice.name).shape;
    const bool wholeRows = slice.axis == SliceAxis::kRows || (shape.size() == 2 && shape[1] == slice.cols);
    if (!wholeRows) {
      const std::vector<uint16_t> raw = read(slice);
      packed.pieces.push_back(pack(raw.data(), slice.rows, slice.cols));
      packed.firstRow.push_back(0);
      return packed;
    }
    requireBf16(slice);
    const TensorSlice rowsOfTensor = slice.axis == SliceAxis::kRows
                                         ? slice
                                         : TensorSlice{slice.name, SliceAxis::kRows, {{0, slice.rows}}, slice.rows,
                                                       slice.cols};
    const int64_t pieceRows = std::min(packPieceRows(slice.cols), slice.rows);
    std::vector<uint16_t> raw(static_cast<size_t>(pieceRows * slice.cols));
    for (int64_t first = 0; first < slice.rows; first += pieceRows) {
      const int64_t count = std::min(pieceRows, slice.rows - first);
      const std::span<uint16_t> piece(raw.data(), size_t(count * slice.cols));
      checkpoint_.copyRows(slice.name, rowSegments(rowsOfTensor, first, count), asBytes(piece));
      packed.pieces.push_back(pack(raw.data(), count, slice.cols));
      packed.firstRow.push_back(first);
      advance(slice, piece.size() * sizeof(uint16_t));
    }
    return packed;
  }

  // A matrix stored INT8 with "<name>_scale" rows: packed as stored, piece by piece like a BF16 one.
  PackedMatrix int8Matrix(const TensorSlice& slice) {
    if (matmulWeights_ != WeightType::kInt8) {
      throwUnsupported("tensor " + slice.name + " in " + checkpoint_.directory().string() +
                       " is INT8 (a quantized checkpoint): load it with --dtype int8");
    }
    PackedMatrix packed{slice.rows, slice.cols, {}, {}};
    const auto& shape = checkpoint_.info(slice.name).shape;
    // Row slices take their rows' scales; a column slice keeps every row, so every scale (of the whole row).
    const TensorSlice rowsOfTensor = slice.axis == SliceAxis::kRows
                                         ? slice
                                         : TensorSlice{slice.name, SliceAxis::kRows, {{0, slice.rows}}, slice.rows,
                                                       slice.cols};
    std::vector<float> scales(static_cast<size_t>(slice.rows));
    checkpoint_.copyRows(scaleTensorName(slice.name), rowSegments(rowsOfTensor, 0, slice.rows),
                         std::as_writable_bytes(std::span<float>(scales)));
    advance(slice, scales.size() * sizeof(float));
    const auto packRows = [&](const std::vector<int8_t>& raw, int64_t first, int64_t count) {
      packed.pieces.push_back(PackedWeight::packInt8Rows(
          count, slice.cols, [&](int64_t row) { return raw.data() + row * slice.cols; }, scales.data() + first));
      packed.firstRow.push_back(first);
    };
    if (slice.axis == SliceAxis::kColumns && shape[1] != slice.cols) {
      std::vector<Segment> segments;
      for (const ShardRange& range : slice.segments) segments.push_back({range.begin, range.count});
      std::vector<int8_t> raw(static_cast<size_t>(slice.rows * slice.cols));
      checkpoint_.copyColumns(slice.name, segments, std::as_writable_bytes(std::span<int8_t>(raw)));
      packRows(raw, 0, slice.rows);
      advance(slice, raw.size());
      return packed;
    }
    const int64_t pieceRows = std::min(packPieceRows(slice.cols), slice.rows);
    std::vector<int8_t> raw(static_cast<size_t>(pieceRows * slice.cols));
    for (int64_t first = 0; first < slice.rows; first += pieceRows) {
      const int64_t count = std::min(pieceRows, slice.rows - first);
      const std::span<int8_t> piece(raw.data(), size_t(count * slice.cols));
      checkpoint_.copyRows(slice.name, rowSegments(rowsOfTensor, first, count), std::as_writable_bytes(piece));
      packRows(raw, first, count);
      advance(slice, piece.size());
    }
    return packed;
  }

  PackedWeight pack(const uint16_t* raw, int64_t rows, int64_t cols) const {
    return matmulWeights_ == WeightType::kInt8 ? PackedWeight::quantizeBf16(raw, rows, cols)
                                               : PackedWeight::packBf16(raw, rows, cols);
  }

  std::vector<float> vector(const TensorSlice& slice) {
    const std::vector<uint16_t> raw = read(slice);
    std::vector<float> values(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) values[i] = bf16ToFloat(raw[i]);
    return values;
  }

 private:
  static std::span<std::byte> asBytes(std::span<uint16_t> values) {
    return {reinterpret_cast<std::byte*>(values.data()), values.size() * sizeof(uint16_t)};
  }

  void requireBf16(const TensorSlice& slice) const {
    const DType dtype = checkpoint_.info(slice.name).dtype;
    if (dtype != DType::kBF16) {
      throwUnsupported("tensor " + slice.name + " in " + checkpoint_.directory().string() + " is " +
                       std::string(dtypeName(dtype)) + ": the engine loads BF16 weights only for now");
    }
  }

  void advance(const TensorSlice& slice, size_t bytes) {
    bytesDone_ += int64_t(bytes);
    if (progress_) progress_(bytesDone_, bytesTotal_, slice.name);
  }

  const Checkpoint& checkpoint_;
  int64_t bytesTotal_;
  const LoadProgress& progress_;
  WeightType matmulWeights_;
  int64_t bytesDone_ = 0;
};

int64_t layerBytes(const LayerWeights& w) {
  return int64_t(w.qkv.bytes() + w.oProj.bytes() + w.gateUp.bytes() + w.down.bytes() +
                 (w.inputNorm.size() + w.postNorm.size()) * sizeof(float));
}

}  // namespace

std::vector<TensorSlice> shardTensorSlices(const ModelConfig& config, const RankShard& shard) {
  std::vector<TensorSlice> slices;
  if (shard.firstStage) slices.push_back(embeddingSlice(config, shard));
  for (int64_t layer = shard.layers.begin; layer < shard.layers.end(); ++layer) {
    for (TensorSlice& slice : layerSlices(config, shard, layer)) slices.push_back(std::move(slice));
  }
  if (shard.lastStage) {
    slices.push_back(finalNormSlice(config));
    slices.push_back(lmHeadSlice(config, shard));
  }
  return slices;
}

WeightType resolveWeightType(const Checkpoint& checkpoint, std::optional<WeightType> requested) {
  return requested.value_or(isQuantizedCheckpoint(checkpoint) ? WeightType::kInt8 : WeightType::kBf16);
}

ShardWeights loadShardWeights(const Checkpoint& checkpoint, const RankShard& shard, const LoadProgress& progress,
                              WeightType matmulWeights) {
  const ModelConfig& config = checkpoint.config();
  validateRankShard(shard, config);
  if (matmulWeights == WeightType::kF32) throwInvalidArgument("loadShardWeights: matrices load as BF16 or INT8");
  int64_t bytesTotal = 0;
  for (const TensorSlice& slice : shardTensorSlices(config, shard)) bytesTotal += sliceBytes(checkpoint, slice);

  SliceReader reader(checkpoint, bytesTotal, progress, matmulWeights);
  ShardWeights weights;
  weights.config = config;
  weights.shard = shard;
  if (shard.firstStage) {
    weights.embedding = reader.read(embeddingSlice(config, shard));
    weights.bytes += int64_t(weights.embedding.size() * sizeof(uint16_t));
  }
  for (int64_t layer = shard.layers.begin; layer < shard.layers.end(); ++layer) {
    const std::vector<TensorSlice> slices = layerSlices(config, shard, layer);
    LayerWeights& w = weights.layers.emplace_back();
    w.inputNorm = reader.vector(slices[0]);
    w.qkv = reader.matrix(slices[1]);
    w.oProj = reader.matrix(slices[2]);
    w.postNorm = reader.vector(slices[3]);
    w.gateUp = reader.matrix(slices[4]);
    w.down = reader.matrix(slices[5]);
    weights.bytes += layerBytes(w);
  }
  if (shard.lastStage) {
    weights.finalNorm = reader.vector(finalNormSlice(config));
    weights.lmHead = reader.matrix(lmHeadSlice(config, shard));
    weights.bytes += int64_t(weights.lmHead.bytes()) + int64_t(weights.finalNorm.size() * sizeof(float));
  }
  return weights;
}

}  // namespace phx
