#include "worker/shard_weights.h"

#include <algorithm>
#include <utility>

#include "common/error.h"
#include "model/bf16.h"
#include "model/quantized_checkpoint.h"

namespace phx {
namespace {

// Slice rows [first, first + count) as rows of the tensor: the slice's rows are its segments' rows in turn.
std::vector<IndexRange> rowSegments(const TensorSlice& slice, int64_t first, int64_t count) {
  std::vector<IndexRange> rows;
  int64_t at = 0;  // slice row where the current segment starts
  for (const IndexRange& range : slice.segments) {
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

// A column slice that keeps every row, seen as the rows of the tensor it spans (for reading it a piece of rows at a
// time, and for its rows' INT8 scales).
TensorSlice asRowsOfTensor(const TensorSlice& slice) {
  if (slice.axis == SliceAxis::kRows) return slice;
  TensorSlice rows = slice;
  rows.axis = SliceAxis::kRows;
  rows.segments = {{0, slice.rows}};
  return rows;
}

// Reads slices in BF16 (or INT8 with scales): whole, or a piece of rows at a time for packing. Counts the bytes it
// reads (for progress) and the bytes of what it returns (ShardWeights::bytes).
class SliceReader {
 public:
  SliceReader(const Checkpoint& checkpoint, int64_t bytesTotal, const LoadProgress& progress, WeightType matmulWeights)
      : checkpoint_(checkpoint), bytesTotal_(bytesTotal), progress_(progress), matmulWeights_(matmulWeights) {}

  int64_t residentBytes() const { return residentBytes_; }

  // Raw BF16 rows, held as they are (the embedding).
  std::vector<uint16_t> rows(const TensorSlice& slice) {
    std::vector<uint16_t> raw = readBf16(slice);
    residentBytes_ += int64_t(raw.size() * sizeof(uint16_t));
    return raw;
  }

  std::vector<float> vector(const TensorSlice& slice) {
    const std::vector<uint16_t> raw = readBf16(slice);
    std::vector<float> values(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) values[i] = bf16ToFloat(raw[i]);
    residentBytes_ += int64_t(values.size() * sizeof(float));
    return values;
  }

  PackedMatrix matrix(const TensorSlice& slice) {
    PackedMatrix packed =
        checkpoint_.info(slice.name).dtype == DType::kI8 ? int8Matrix(slice) : bf16Matrix(slice);
    residentBytes_ += int64_t(packed.bytes());
    return packed;
  }

 private:
  std::vector<uint16_t> readBf16(const TensorSlice& slice) {
    requireBf16(slice);
    std::vector<uint16_t> raw(static_cast<size_t>(slice.rows * slice.cols));
    if (slice.axis == SliceAxis::kRows) {
      checkpoint_.copyRows(slice.name, slice.segments, asBytes(raw));
    } else {
      checkpoint_.copyColumns(slice.name, slice.segments, asBytes(raw));
    }
    advance(slice, raw.size() * sizeof(uint16_t));
    return raw;
  }

  // Packs piece by piece where the slice is whole rows of the tensor (row slices, and column slices that keep
  // every column); a column slice of a row-parallel rank is read whole (it is already a fraction of the tensor).
  PackedMatrix bf16Matrix(const TensorSlice& slice) {
    PackedMatrix packed{slice.rows, slice.cols, {}, {}};
    if (!slice.wholeRows()) {
      const std::vector<uint16_t> raw = readBf16(slice);
      packed.pieces.push_back(pack(raw.data(), slice.rows, slice.cols));
      packed.firstRow.push_back(0);
      return packed;
    }
    requireBf16(slice);
    const TensorSlice rowsOfTensor = asRowsOfTensor(slice);
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
    // Row slices take their rows' scales; a column slice keeps every row, so every scale (of the whole row).
    const TensorSlice rowsOfTensor = asRowsOfTensor(slice);
    std::vector<float> scales(static_cast<size_t>(slice.rows));
    checkpoint_.copyRows(scaleTensorName(slice.name), rowSegments(rowsOfTensor, 0, slice.rows),
                         std::as_writable_bytes(std::span<float>(scales)));
    advance(slice, scales.size() * sizeof(float));
    const auto packRows = [&](const std::vector<int8_t>& raw, int64_t first, int64_t count) {
      packed.pieces.push_back(PackedWeight::packInt8Rows(
          count, slice.cols, [&](int64_t row) { return raw.data() + row * slice.cols; }, scales.data() + first));
      packed.firstRow.push_back(first);
    };
    if (!slice.wholeRows()) {
      std::vector<int8_t> raw(static_cast<size_t>(slice.rows * slice.cols));
      checkpoint_.copyColumns(slice.name, slice.segments, std::as_writable_bytes(std::span<int8_t>(raw)));
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
  int64_t residentBytes_ = 0;
};

}  // namespace

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
  const auto slice = [&](TensorRole role, int64_t layer = 0) { return tensorSlice(config, shard, role, layer); };
  ShardWeights weights;
  weights.config = config;
  weights.shard = shard;
  if (shard.firstStage) weights.embedding = reader.rows(slice(TensorRole::kEmbedding));
  for (int64_t layer = shard.layers.begin; layer < shard.layers.end(); ++layer) {
    LayerWeights& w = weights.layers.emplace_back();
    w.inputNorm = reader.vector(slice(TensorRole::kInputNorm, layer));
    w.qkv = reader.matrix(slice(TensorRole::kQkv, layer));
    w.oProj = reader.matrix(slice(TensorRole::kOProj, layer));
    w.postNorm = reader.vector(slice(TensorRole::kPostNorm, layer));
    w.gateUp = reader.matrix(slice(TensorRole::kGateUp, layer));
    w.down = reader.matrix(slice(TensorRole::kDown, layer));
  }
  if (shard.lastStage) {
    weights.finalNorm = reader.vector(slice(TensorRole::kFinalNorm));
    weights.lmHead = reader.matrix(slice(TensorRole::kLmHead));
  }
  weights.bytes = reader.residentBytes();
  return weights;
}

}  // namespace phx
