#include "partition/tensor_table.h"

#include <array>
#include <numeric>

namespace phx {
namespace {

// A dimension of a tensor's full shape, by the config field it comes from.
enum class Dim { kOne, kHidden, kQkvRows, kQueryDim, kGateUpRows, kIntermediate, kVocab };

// Which of the shard's ranges select the sliced axis.
enum class ShardSplit {
  kWhole,       // every rank holds all of it
  kQkvHeads,    // its Q heads' rows, then its KV heads' K rows, then their V rows
  kQueryHeads,  // its Q heads' columns (o_proj)
  kGateUp,      // its MLP columns' gate rows, then their up rows
  kMlpColumns,  // its MLP columns (down_proj)
  kVocabRows,   // its vocab rows
};

enum class Placement { kFirstStage, kEveryLayer, kLastStage };

struct TensorRule {
  TensorRole role;
  const char* name;  // after "model.layers.{layer}." for a layer tensor
  Placement placement;
  Dim rows, cols;  // cols kOne: a vector
  SliceAxis axis;
  ShardSplit split;
  TensorForm form;
  bool partialSum;
};

using enum Dim;
using enum ShardSplit;
using enum Placement;
using enum TensorForm;
using enum SliceAxis;
constexpr std::array<TensorRule, 9> kTensorTable{{
    {TensorRole::kEmbedding, "model.embed_tokens.weight", kFirstStage, kVocab, kHidden, kRows, kVocabRows, kRawRows,
     false},
    {TensorRole::kInputNorm, "input_layernorm.weight", kEveryLayer, kHidden, kOne, kRows, kWhole, kNormVector, false},
    {TensorRole::kQkv, "self_attn.qkv_proj.weight", kEveryLayer, kQkvRows, kHidden, kRows, kQkvHeads, kMatrix, false},
    {TensorRole::kOProj, "self_attn.o_proj.weight", kEveryLayer, kHidden, kQueryDim, kColumns, kQueryHeads, kMatrix,
     true},
    {TensorRole::kPostNorm, "post_attention_layernorm.weight", kEveryLayer, kHidden, kOne, kRows, kWhole, kNormVector,
     false},
    {TensorRole::kGateUp, "mlp.gate_up_proj.weight", kEveryLayer, kGateUpRows, kHidden, kRows, kGateUp, kMatrix, false},
    {TensorRole::kDown, "mlp.down_proj.weight", kEveryLayer, kHidden, kIntermediate, kColumns, kMlpColumns, kMatrix,
     true},
    {TensorRole::kFinalNorm, "model.norm.weight", kLastStage, kHidden, kOne, kRows, kWhole, kNormVector, false},
    {TensorRole::kLmHead, "lm_head.weight", kLastStage, kVocab, kHidden, kRows, kVocabRows, kMatrix, false},
}};

// The table is indexed by role.
constexpr bool rolesInOrder() {
  for (size_t i = 0; i < kTensorTable.size(); ++i) {
    if (size_t(kTensorTable[i].role) != i) return false;
  }
  return true;
}
static_assert(rolesInOrder());

int64_t dimSize(const ModelConfig& c, Dim dim) {
  switch (dim) {
    case kOne:
      return 1;
    case kHidden:
      return c.hiddenSize;
    case kQkvRows:
      return c.qkvRows();
    case kQueryDim:
      return c.qDim();
    case kGateUpRows:
      return 2 * c.intermediateSize;
    case kIntermediate:
      return c.intermediateSize;
    case kVocab:
      return c.vocabSize;
  }
  return 0;
}

std::vector<IndexRange> segmentsOf(const ModelConfig& c, const RankShard& s, ShardSplit split, int64_t axisSize) {
  const int64_t hd = c.headDim();
  const IndexRange q{s.queryHeads.begin * hd, s.queryHeads.count * hd};
  switch (split) {
    case kWhole:
      return {{0, axisSize}};
    case kQkvHeads: {
      const IndexRange k{c.qDim() + s.kvHeads.begin * hd, s.kvHeads.count * hd};
      return {q, k, {k.begin + c.kvDim(), k.count}};
    }
    case kQueryHeads:
      return {q};
    case kGateUp:
      return {s.mlpColumns, {c.intermediateSize + s.mlpColumns.begin, s.mlpColumns.count}};
    case kMlpColumns:
      return {s.mlpColumns};
    case kVocabRows:
      return {s.vocabRows};
  }
  return {};
}

TensorSlice sliceByRule(const ModelConfig& c, const RankShard& s, const TensorRule& rule, int64_t layer) {
  TensorSlice slice;
  slice.role = rule.role;
  slice.name = rule.placement == kEveryLayer ? "model.layers." + std::to_string(layer) + "." + rule.name : rule.name;
  slice.form = rule.form;
  slice.axis = rule.axis;
  slice.partialSum = rule.partialSum;
  const int64_t rows = dimSize(c, rule.rows), cols = dimSize(c, rule.cols);
  slice.tensorShape = rule.cols == kOne ? std::vector<int64_t>{rows} : std::vector<int64_t>{rows, cols};
  slice.segments = segmentsOf(c, s, rule.split, rule.axis == kRows ? rows : cols);
  const int64_t taken = std::accumulate(slice.segments.begin(), slice.segments.end(), int64_t{0},
                                        [](int64_t sum, const IndexRange& r) { return sum + r.count; });
  slice.rows = rule.axis == kRows ? taken : rows;
  slice.cols = rule.axis == kColumns ? taken : cols;
  return slice;
}

bool holds(const RankShard& shard, Placement placement) {
  return placement == kEveryLayer || (placement == kFirstStage ? shard.firstStage : shard.lastStage);
}

}  // namespace

int64_t TensorSpec::elementCount() const {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
}

TensorSlice tensorSlice(const ModelConfig& config, const RankShard& shard, TensorRole role, int64_t layer) {
  return sliceByRule(config, shard, kTensorTable[size_t(role)], layer);
}

std::vector<TensorSlice> shardTensorSlices(const ModelConfig& config, const RankShard& shard) {
  std::vector<TensorSlice> slices;
  const auto addPlaced = [&](Placement placement, int64_t layer) {
    for (const TensorRule& rule : kTensorTable) {
      if (rule.placement == placement && holds(shard, placement))
        slices.push_back(sliceByRule(config, shard, rule, layer));
    }
  };
  addPlaced(kFirstStage, 0);
  for (int64_t layer = shard.layers.begin; layer < shard.layers.end(); ++layer) addPlaced(kEveryLayer, layer);
  addPlaced(kLastStage, 0);
  return slices;
}

std::vector<TensorSpec> expectedTensors(const ModelConfig& config) {
  std::vector<TensorSpec> specs;
  for (TensorSlice& slice : shardTensorSlices(config, wholeModelShard(config))) {
    specs.push_back({std::move(slice.name), std::move(slice.tensorShape)});
  }
  return specs;
}

int64_t parameterCount(const ModelConfig& config) {
  int64_t total = 0;
  for (const TensorSpec& spec : expectedTensors(config)) total += spec.elementCount();
  return total;
}

int64_t residentBytes(const TensorSlice& slice, WeightType matrices) {
  switch (slice.form) {
    case kNormVector:
      return slice.rows * slice.cols * int64_t(sizeof(float));
    case kRawRows:
      return slice.rows * slice.cols * int64_t(sizeof(uint16_t));
    case kMatrix:
      return packedMatrixBytes(slice.rows, slice.cols, matrices);
  }
  return 0;
}

}  // namespace phx
