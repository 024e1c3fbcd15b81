// Writes a complete checkpoint directory in the layout of the Hugging Face repo microsoft/phi-4: config.json,
// generation_config.json, model-0000i-of-0000n.safetensors shards with model.safetensors.index.json, and the
// tokenizer files. Weights are random (model/random_weights.h), generated in chunks while the previous chunk is
// written, so memory stays at a few chunks whatever the model size.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "model/config.h"
#include "partition/tensor_table.h"

namespace phx {

// Hugging Face's default max_shard_size ("5GB" = 5e9 bytes of tensor data per shard).
inline constexpr uint64_t kDefaultMaxShardBytes = 5'000'000'000ull;

struct ShardPlan {
  std::string fileName;              // model-00001-of-00006.safetensors
  std::vector<TensorSpec> tensors;   // in file order: sorted by name, as the safetensors library writes them
  uint64_t payloadBytes = 0;         // tensor data bytes (BF16)
};

// Splits expectedTensors(config), in that order, into shards as Hugging Face's save_pretrained does: a shard is
// closed when the next tensor would take its data past maxShardBytes; a tensor larger than that gets a shard of
// its own. Throws phx::Error (invalid argument) when maxShardBytes is 0.
std::vector<ShardPlan> planShards(const ModelConfig& config, uint64_t maxShardBytes);

struct CheckpointOptions {
  ModelConfig config;
  uint64_t seed = 0;
  uint64_t maxShardBytes = kDefaultMaxShardBytes;
  bool force = false;                  // overwrite a non-empty directory
  int threads = 2;                     // random generation threads (writing overlaps them)
  uint64_t chunkBytes = 64ull << 20;   // generated and written at a time
};

// Reported after each chunk is written, and once more when a shard is complete.
struct WriteProgress {
  std::string_view tensorName;
  int shardIndex = 0;  // 1-based
  int shardCount = 0;
  uint64_t bytesWritten = 0;  // tensor bytes over the whole checkpoint
  uint64_t totalBytes = 0;
  bool shardDone = false;
};
using ProgressCallback = std::function<void(const WriteProgress&)>;

struct CheckpointSummary {
  int64_t parameters = 0;
  uint64_t payloadBytes = 0;  // the index's total_size
  int shards = 0;
};

// Writes the checkpoint into `dir` (created if missing). Every file is written under dir/.make-model.tmp and
// renamed into place at the end, the index last, so an interrupted run never leaves a checkpoint that looks
// complete. Refuses a non-empty `dir` unless options.force; with force, the previous checkpoint's shards and
// index are replaced. Throws phx::Error (invalid argument, I/O).
CheckpointSummary writeCheckpoint(const std::filesystem::path& dir, const CheckpointOptions& options,
                                  const ProgressCallback& progress = {});

}  // namespace phx
