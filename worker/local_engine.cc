#include "worker/local_engine.h"

#include <chrono>

#include "common/error.h"
#include "model/checkpoint.h"

namespace phx {

std::unique_ptr<LocalEngine> LocalEngine::open(const std::filesystem::path& modelDir,
                                               const LocalEngineOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<LocalEngine> engine(new LocalEngine());
  {
    const auto checkpoint = Checkpoint::open(modelDir);
    engine->weightType_ = resolveWeightType(*checkpoint, options.weightType);
    engine->weights_ = loadShardWeights(*checkpoint, wholeModelShard(checkpoint->config()), options.progress,
                                        engine->weightType_);
  }
  const ShardWeights& weights = engine->weights_;
  engine->cache_ = std::make_unique<KvCache>(
      kvCacheShapeFor(weights.config, weights.shard, options.kvBlockSize, options.kvTokens, options.kvType));
  engine->runner_ = std::make_unique<ModelRunner>(
      weights, *engine->cache_, engine->comm_,
      RunnerOptions{.maxStepTokens = options.maxStepTokens, .threads = options.threads});
  engine->loadSeconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return engine;
}

std::optional<WeightType> parseWeightDtype(const std::string& name) {
  if (name == "bf16") return WeightType::kBf16;
  if (name == "int8") return WeightType::kInt8;
  if (name == "auto") return std::nullopt;
  throwInvalidArgument("--dtype: expected bf16, int8 or auto, got '" + name + "'");
}

KvType parseKvDtype(const std::string& name) {
  if (name == "bf16") return KvType::kBf16;
  if (name == "int8") return KvType::kInt8;
  if (name == "f32") return KvType::kF32;
  throwInvalidArgument("--kv-dtype: expected bf16, int8 or f32, got '" + name + "'");
}

}  // namespace phx
