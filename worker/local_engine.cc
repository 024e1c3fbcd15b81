#include "worker/local_engine.h"

#include <chrono>

#include "model/checkpoint.h"

namespace phx {

std::unique_ptr<LocalEngine> LocalEngine::open(const std::filesystem::path& modelDir,
                                               const LocalEngineOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<LocalEngine> engine(new LocalEngine());
  {
    const auto checkpoint = Checkpoint::open(modelDir);
    engine->weights_ = loadShardWeights(*checkpoint, wholeModelShard(checkpoint->config()), options.progress);
  }
  const ShardWeights& weights = engine->weights_;
  engine->cache_ = std::make_unique<KvCache>(
      kvCacheShapeFor(weights.config, weights.shard, options.kvBlockSize, options.kvTokens));
  engine->runner_ = std::make_unique<ModelRunner>(
      weights, *engine->cache_, engine->comm_,
      RunnerOptions{.maxStepTokens = options.maxStepTokens, .threads = options.threads});
  engine->loadSeconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return engine;
}

}  // namespace phx
