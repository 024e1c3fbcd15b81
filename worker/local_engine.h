// The whole model in this process: one rank holding every layer, head, column and vocab row, with its KV cache
// and a single-rank communicator. What `phalanx generate` and `phalanx bench` run on one machine.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "rpc/communicator.h"
#include "worker/kv_cache.h"
#include "worker/model_runner.h"
#include "worker/shard_weights.h"

namespace phx {

struct LocalEngineOptions {
  int64_t kvTokens = 4096;       // KV cache capacity in tokens (rounded up to whole blocks)
  int64_t kvBlockSize = 16;
  int64_t maxStepTokens = 512;
  int threads = 0;               // 0: OpenMP's default
  LoadProgress progress;         // optional
  // Matrices as kBf16 or kInt8 (quantized while loading); unset: the checkpoint's own (INT8 for a checkpoint
  // written by `phalanx quantize`, else BF16).
  std::optional<WeightType> weightType;
  KvType kvType = KvType::kBf16;
};

// "--dtype" values: "bf16", "int8", or "auto" (nullopt: the checkpoint's own). "--kv-dtype": "bf16", "int8",
// "f32". Throw phx::Error (invalid argument) naming the flag and the accepted values.
std::optional<WeightType> parseWeightDtype(const std::string& name);
KvType parseKvDtype(const std::string& name);

class LocalEngine {
 public:
  // Opens the checkpoint, loads and packs every weight (the checkpoint is closed again afterwards), reserves the
  // KV cache. Throws phx::Error naming the file or tensor at fault.
  static std::unique_ptr<LocalEngine> open(const std::filesystem::path& modelDir, const LocalEngineOptions& options);

  const ModelConfig& config() const { return weights_.config; }
  const ShardWeights& weights() const { return weights_; }
  KvCache& cache() { return *cache_; }
  const KvCache& cache() const { return *cache_; }
  ModelRunner& runner() { return *runner_; }
  double loadSeconds() const { return loadSeconds_; }
  WeightType weightType() const { return weightType_; }

 private:
  LocalEngine() = default;

  ShardWeights weights_;
  SingleRankCommunicator comm_;
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<ModelRunner> runner_;
  double loadSeconds_ = 0;
  WeightType weightType_ = WeightType::kBf16;
};

}  // namespace phx
