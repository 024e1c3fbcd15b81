// One Phi-4 decoder layer on one tensor-parallel rank (Megatron split): its query and KV heads, its MLP columns.
// The two row-parallel projections (o_proj, down_proj) leave partial sums that the communicator adds up across
// the rank's group; for a single rank that is a no-op. The layer receives its weights, cache and communicator and
// never asks what rank it is.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/rope.h"
#include "model/config.h"
#include "partition/rank_shard.h"
#include "rpc/communicator.h"
#include "rpc/step.h"
#include "worker/kv_cache.h"
#include "worker/shard_weights.h"
#include "worker/step_layout.h"

namespace phx {

// The sizes a layer works with on this rank, fixed at load.
struct LayerGeometry {
  int64_t hidden = 0;
  int64_t headDim = 0;
  int64_t qHeads = 0;     // this rank's query heads
  int64_t kvHeads = 0;    // this rank's KV heads
  int64_t mlpColumns = 0;
  double rmsNormEps = 0;
  std::vector<int32_t> kvHeadOf;  // [qHeads]: the local KV head each local query head reads

  int64_t qRows() const { return qHeads * headDim; }
  int64_t kvRows() const { return kvHeads * headDim; }
  int64_t qkvRows() const { return qRows() + 2 * kvRows(); }
};

LayerGeometry layerGeometry(const ModelConfig& config, const RankShard& shard);

// A step's activations inside a layer, allocated once for the largest step.
struct LayerScratch {
  LayerScratch(const LayerGeometry& geometry, int64_t maxTokens);

  std::vector<float> normed;   // [tokens, hidden]
  std::vector<float> qkv;      // [tokens, qkvRows]: this rank's Q heads | K heads | V heads
  std::vector<float> attended; // [tokens, qRows]
  std::vector<float> partial;  // [tokens, hidden]: a row-parallel projection's partial sum
  std::vector<float> gateUp;   // [tokens, 2 * mlpColumns]: gate | up
  std::vector<float> mlp;      // [tokens, mlpColumns]
};

// What one layer needs for a step besides its weights.
struct LayerStep {
  const StepLayout& layout;
  PagedKv cache;  // this layer's KV blocks
  LayerScratch& scratch;
  Communicator& comm;
  const RopeTable& rope;  // cos/sin per position, shared by every layer
};

// x: [tokens, hidden], the residual stream, updated in place.
void decoderLayer(const LayerWeights& w, const LayerGeometry& g, const LayerStep& step, float* x);

}  // namespace phx
