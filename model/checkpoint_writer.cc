#include "model/checkpoint_writer.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <future>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "model/random_weights.h"
#include "model/safetensors_writer.h"
#include "model/tokenizer_files.h"
#include "partition/tensor_table.h"

namespace phx {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kStagingName = ".make-model.tmp";
constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr int64_t kBf16Bytes = 2;

std::string shardFileName(size_t index, size_t count) {
  char name[64];
  std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", index + 1, count);
  return name;
}

// A checkpoint file a previous run may have left, which a forced overwrite must not leave behind.
bool isCheckpointShard(const std::string& name) {
  return name == "model.safetensors" ||
         (name.rfind("model-", 0) == 0 && name.find("-of-") != std::string::npos &&
          name.size() > 12 && name.substr(name.size() - 12) == ".safetensors");
}

// Hugging Face writes its JSON files with json.dumps(..., indent=2, sort_keys=True) + "\n"; nlohmann::json keeps
// keys sorted, so dump(2) gives the same text.
void writeJsonFile(const fs::path& path, const json& value) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << value.dump(2) << "\n";
  out.close();
  if (!out) throwIoError(path.string() + ": write failed");
}

json generationConfigJson(const ModelConfig& c) {
  // microsoft/phi-4's generation_config.json: generation stops at <|im_end|> or <|endoftext|>.
  return json{{"_from_model_config", true},
              {"bos_token_id", c.bosTokenId},
              {"eos_token_id", {c.eosTokenId, c.bosTokenId}},
              {"pad_token_id", c.padTokenId},
              {"transformers_version", "4.47.0"}};
}

json indexJson(const std::vector<ShardPlan>& shards) {
  uint64_t total = 0;
  json weightMap = json::object();
  for (const ShardPlan& shard : shards) {
    total += shard.payloadBytes;
    for (const TensorSpec& tensor : shard.tensors) weightMap[tensor.name] = shard.fileName;
  }
  return json{{"metadata", {{"total_size", total}}}, {"weight_map", weightMap}};
}

// Checks `dir` may be written and returns the empty staging directory inside it.
fs::path prepareDirectory(const fs::path& dir, bool force) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
    throwInvalidArgument(dir.string() + " exists and is not a directory");
  }
  fs::create_directories(dir, ec);
  if (ec) throw Error(ErrorKind::kIo, dir.string() + ": cannot create directory: " + ec.message());
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    // A staging directory left by an interrupted run does not count: it never looked like a checkpoint.
    if (entry.path().filename() != kStagingName && !force) {
      throwInvalidArgument(dir.string() + " is not empty (holds " + entry.path().filename().string() +
                           "); pass --force to overwrite it");
    }
  }
  const fs::path staging = dir / kStagingName;
  fs::remove_all(staging, ec);
  fs::create_directory(staging, ec);
  if (ec) throw Error(ErrorKind::kIo, staging.string() + ": cannot create directory: " + ec.message());
  return staging;
}

void checkFreeSpace(const fs::path& dir, uint64_t needed) {
  uint64_t reclaimable = 0;  // shards a forced overwrite replaces
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && isCheckpointShard(entry.path().filename().string()))
      reclaimable += entry.file_size();
  }
  const uint64_t available = fs::space(dir).available + reclaimable;
  if (available < needed) {
    throw Error(ErrorKind::kIo, dir.string() + ": needs " + std::to_string(needed) + " bytes but only " +
                                    std::to_string(available) + " are free");
  }
}

// Moves every staged file into `dir`, the index last, after removing what a previous checkpoint left.
void publish(const fs::path& staging, const fs::path& dir) {
  fs::remove(dir / kIndexName);  // first, so the old checkpoint stops looking complete
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (isCheckpointShard(name) && !fs::exists(staging / name)) fs::remove(entry.path());
  }
  for (const fs::directory_entry& entry : fs::directory_iterator(staging)) {
    if (entry.path().filename() != kIndexName) fs::rename(entry.path(), dir / entry.path().filename());
  }
  fs::rename(staging / kIndexName, dir / kIndexName);
  fs::remove_all(staging);
}

// One piece of one tensor: elements [first, first + count) of its random stream.
struct Chunk {
  const TensorSpec* tensor;
  uint64_t key;
  UniformInit init;
  int64_t first;
  int64_t count;
};

std::vector<Chunk> chunksOf(const ShardPlan& shard, const CheckpointOptions& options) {
  const int64_t chunkElements = std::max<int64_t>(1, int64_t(options.chunkBytes) / kBf16Bytes);
  std::vector<Chunk> chunks;
  for (const TensorSpec& tensor : shard.tensors) {
    const uint64_t key = randomStreamKey(options.seed, tensor.name);
    const UniformInit init = weightInit(options.config, tensor.name);
    for (int64_t first = 0; first < tensor.elementCount(); first += chunkElements) {
      chunks.push_back({&tensor, key, init, first, std::min(chunkElements, tensor.elementCount() - first)});
    }
  }
  return chunks;
}

struct ProgressState {
  const ProgressCallback& callback;
  uint64_t written = 0;
  uint64_t total = 0;
  int shardCount = 0;
};

// Generates chunk i+1 (options.threads threads) while chunk i is written: two buffers, never a whole tensor.
void writeShard(const fs::path& path, const ShardPlan& shard, int shardIndex, const CheckpointOptions& options,
                ProgressState& progress) {
  std::vector<SafetensorsEntry> entries;
  for (const TensorSpec& tensor : shard.tensors) entries.push_back({tensor.name, DType::kBF16, tensor.shape});
  SafetensorsWriter writer(path, std::move(entries), {{"format", "pt"}});

  const std::vector<Chunk> chunks = chunksOf(shard, options);
  int64_t largest = 0;
  for (const Chunk& chunk : chunks) largest = std::max(largest, chunk.count);
  std::vector<uint16_t> buffers[2] = {std::vector<uint16_t>(largest), std::vector<uint16_t>(largest)};
  auto fill = [&](size_t i) {
    const Chunk& c = chunks[i];
    fillUniformBf16Parallel(c.key, c.init, c.first, c.count, buffers[i % 2].data(), options.threads);
  };
  std::future<void> next = std::async(std::launch::async, fill, size_t(0));
  for (size_t i = 0; i < chunks.size(); ++i) {
    next.get();
    if (i + 1 < chunks.size()) next = std::async(std::launch::async, fill, i + 1);
    writer.append(buffers[i % 2].data(), size_t(chunks[i].count * kBf16Bytes));
    progress.written += uint64_t(chunks[i].count * kBf16Bytes);
    if (progress.callback) {
      progress.callback({chunks[i].tensor->name, shardIndex + 1, progress.shardCount, progress.written,
                         progress.total, false});
    }
  }
  writer.finish();
  if (progress.callback) {
    progress.callback({shard.tensors.back().name, shardIndex + 1, progress.shardCount, progress.written,
                       progress.total, true});
  }
}

}  // namespace

std::vector<ShardPlan> planShards(const ModelConfig& config, uint64_t maxShardBytes) {
  if (maxShardBytes == 0) throwInvalidArgument("the shard size must be at least 1 byte");
  std::vector<ShardPlan> shards(1);
  for (const TensorSpec& tensor : expectedTensors(config)) {
    const uint64_t bytes = uint64_t(tensor.elementCount() * kBf16Bytes);
    if (!shards.back().tensors.empty() && shards.back().payloadBytes + bytes > maxShardBytes) shards.emplace_back();
    shards.back().tensors.push_back(tensor);
    shards.back().payloadBytes += bytes;
  }
  for (size_t i = 0; i < shards.size(); ++i) {
    shards[i].fileName = shardFileName(i, shards.size());
    std::sort(shards[i].tensors.begin(), shards[i].tensors.end(),
              [](const TensorSpec& a, const TensorSpec& b) { return a.name < b.name; });
  }
  return shards;
}

CheckpointSummary writeCheckpoint(const fs::path& dir, const CheckpointOptions& options,
                                  const ProgressCallback& progress) {
  if (options.threads < 1) throwInvalidArgument("threads must be at least 1");
  const std::vector<ShardPlan> shards = planShards(options.config, options.maxShardBytes);
  CheckpointSummary summary{parameterCount(options.config), 0, int(shards.size())};
  for (const ShardPlan& shard : shards) summary.payloadBytes += shard.payloadBytes;

  const fs::path staging = prepareDirectory(dir, options.force);
  checkFreeSpace(dir, summary.payloadBytes + (64ull << 20));
  writeJsonFile(staging / "config.json", modelConfigToJson(options.config));
  writeJsonFile(staging / "generation_config.json", generationConfigJson(options.config));
  writeTokenizerFiles(staging);
  ProgressState state{progress, 0, summary.payloadBytes, int(shards.size())};
  for (size_t i = 0; i < shards.size(); ++i)
    writeShard(staging / shards[i].fileName, shards[i], int(i), options, state);
  writeJsonFile(staging / kIndexName, indexJson(shards));
  publish(staging, dir);
  return summary;
}

}  // namespace phx
