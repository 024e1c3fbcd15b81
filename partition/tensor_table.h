// Every tensor of a Phi3ForCausalLM checkpoint and how a rank takes its part of it, as one table (tensor_table.cc):
// name, full shape, the axis a rank slices, the segments it takes (its Q | K | V heads, its gate | up columns),
// whether its product is a partial sum the ranks reduce, and how the engine holds it. The checkpoint's expected
// tensors, each shard's slices, the plan's byte estimates and the worker's loader all walk this table, the way
// gemma.cpp walks one tensor registry for load, save and size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/index_range.h"
#include "common/weight_type.h"
#include "model/config.h"
#include "partition/rank_shard.h"

namespace phx {

// The tensors by what they are, in the order Hugging Face writes a layer (and the model around its layers).
enum class TensorRole {
  kEmbedding,  // model.embed_tokens.weight
  kInputNorm,
  kQkv,
  kOProj,
  kPostNorm,
  kGateUp,
  kDown,
  kFinalNorm,  // model.norm.weight
  kLmHead,
};

// How the engine holds a tensor once loaded (its dtype rule).
enum class TensorForm {
  kNormVector,  // f32 values
  kRawRows,     // BF16 rows as stored: a lookup reads one row per token
  kMatrix,      // packed for the matmul, in the shard's WeightType
};

enum class SliceAxis { kRows, kColumns };

// A tensor the checkpoint must hold: its Hugging Face name and shape ([rows, cols] for matrices).
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  int64_t elementCount() const;
};

// What a rank reads of one tensor: rows (or columns) made of segments, concatenated in order.
struct TensorSlice {
  TensorRole role = TensorRole::kEmbedding;
  std::string name;
  TensorForm form = TensorForm::kMatrix;
  SliceAxis axis = SliceAxis::kRows;
  std::vector<IndexRange> segments;
  std::vector<int64_t> tensorShape;  // the whole tensor's
  int64_t rows = 0;                  // the slice's shape (a vector is [rows, 1])
  int64_t cols = 0;
  bool partialSum = false;  // row-parallel: the rank's product is a partial sum the ranks add up

  // The slice keeps every column of the tensor, so it is whole rows of it.
  bool wholeRows() const { return axis == SliceAxis::kRows || tensorShape.back() == cols; }
};

// The slice of one tensor a shard holds; `layer` is the decoder layer for a layer tensor, ignored otherwise.
TensorSlice tensorSlice(const ModelConfig& config, const RankShard& shard, TensorRole role, int64_t layer = 0);

// Everything a shard holds, in checkpoint order: the embedding rows (first stage), each layer's six tensors, the
// final norm and lm_head rows (last stage).
std::vector<TensorSlice> shardTensorSlices(const ModelConfig& config, const RankShard& shard);

// Every tensor of the checkpoint, in the order Hugging Face writes them: the whole model's shard, unsliced. The
// generator writes exactly these; the loader checks a checkpoint against them.
std::vector<TensorSpec> expectedTensors(const ModelConfig& config);
int64_t parameterCount(const ModelConfig& config);

// Bytes the engine holds for a slice: f32 norms, raw BF16 rows, matrices packed as `matrices`.
int64_t residentBytes(const TensorSlice& slice, WeightType matrices);

}  // namespace phx
