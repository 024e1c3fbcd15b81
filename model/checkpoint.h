// A model directory as Hugging Face ships microsoft/phi-4: config.json plus either model.safetensors.index.json
// ({"metadata": {"total_size": N}, "weight_map": {tensor: shard file}}) with its shards, or one model.safetensors.
// open() validates everything once (each error names the file and what is wrong); afterwards tensors are read by
// name, whole or as a slice of rows or columns made of segments: the basis of sharding. Other files in the
// directory (tokenizer, generation_config.json, added_tokens.json, ...) are not looked at.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/index_range.h"
#include "model/config.h"
#include "model/mapped_file.h"
#include "model/safetensors.h"

namespace phx {

struct ShardInfo {
  std::filesystem::path file;
  uint64_t fileSize = 0;
  uint64_t headerLength = 0;
  int64_t tensorCount = 0;
  std::map<std::string, std::string> metadata;  // the shard's "__metadata__"
};

class Checkpoint {
 public:
  // Throws phx::Error (kInvalidCheckpoint, kUnsupported for a config this build cannot compute, kIo when the
  // operating system refuses a read) naming the file and what is wrong.
  static std::unique_ptr<Checkpoint> open(const std::filesystem::path& dir);

  const std::filesystem::path& directory() const { return directory_; }
  const ModelConfig& config() const { return config_; }
  // In the model's order (expectedTensors(config): embeddings, layer by layer, final norm, lm_head), which is the
  // order a loader walks; the index file itself is sorted by name, putting layer 10 before layer 2.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // In file name order.
  const std::vector<ShardInfo>& shards() const { return shards_; }
  // Things that were accepted but worth saying (ignored buffers, an index total_size that disagrees).
  const std::vector<std::string>& warnings() const { return warnings_; }

  bool has(const std::string& name) const { return byName_.count(name) > 0; }
  // Throws kInvalidArgument naming the tensor and the directory when it is not in the checkpoint.
  const TensorInfo& info(const std::string& name) const;

  // The given rows (dim 0) of a tensor, segments concatenated in order (e.g. this rank's Q, K and V heads of
  // qkv_proj, or its gate and up halves of gate_up_proj), copied into `out` in the tensor's dtype. Reads only
  // those bytes. `out` must be exactly the selection's size. A 1-D tensor's rows are its elements.
  void copyRows(const std::string& name, std::span<const IndexRange> rows, std::span<std::byte> out) const;
  // The same along dim 1 of a 2-D tensor (a row-parallel o_proj/down_proj slice): out is [rows, selected columns].
  void copyColumns(const std::string& name, std::span<const IndexRange> columns, std::span<std::byte> out) const;
  void copyTensor(const std::string& name, std::span<std::byte> out) const;

  // Payload bytes handed out so far by the copies: lets a worker prove it read only its shard.
  uint64_t bytesRead() const { return bytesRead_.load(std::memory_order_relaxed); }

 private:
  Checkpoint() = default;
  const MappedFile& fileOf(const TensorInfo& tensor) const;

  std::filesystem::path directory_;
  ModelConfig config_;
  std::vector<TensorInfo> tensors_;
  std::vector<ShardInfo> shards_;
  std::vector<std::string> warnings_;
  std::unordered_map<std::string, size_t> byName_;  // -> index in tensors_
  std::map<std::filesystem::path, MappedFile> files_;
  mutable std::atomic<uint64_t> bytesRead_{0};

};

}  // namespace phx
