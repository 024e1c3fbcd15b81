// A tests-only writer of small, valid Phi-3-architecture checkpoints in the Hugging Face layout, and helpers to
// corrupt them. It shares no code with the production generator (model/*_writer.*) or the loader, so a bug
// mirrored in both cannot hide: tensor names and shapes are written out by hand from transformers'
// Phi3ForCausalLM, and the safetensors bytes are assembled here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/common/test_files.h"

namespace phx::testing {

// The model's dimensions. Defaults: head dim 16, 2 query heads per KV head, 2 layers.
struct TestModelShape {
  int64_t hidden = 64;
  int64_t heads = 4;
  int64_t kvHeads = 2;
  int64_t intermediate = 96;
  int64_t layers = 2;
  int64_t vocab = 256;
};

struct TestTensor {
  std::string name;
  std::string dtype = "BF16";
  std::vector<int64_t> shape;
  uint64_t byteSize() const;  // elements * dtype size
};

// config.json with every key microsoft/phi-4 ships, for this shape.
nlohmann::json testConfigJson(const TestModelShape& shape = {});
// Every tensor of Phi3ForCausalLM with these dimensions, in module order.
std::vector<TestTensor> testModelTensors(const TestModelShape& shape = {});

// The deterministic content of a tensor: byte i of tensor `name`. Differs between tensors and positions.
std::byte payloadByte(const std::string& name, uint64_t i);

struct WriteOptions {
  int shards = 3;  // 0: one model.safetensors and no index
  nlohmann::json metadata = {{"format", "pt"}};  // each shard's "__metadata__"; null for none
  bool extraFiles = true;  // tokenizer files etc. that the loader must ignore
  // Leave the payload as a hole (zeros, no disk space): full-size Phi-4 layouts in tests.
  bool sparsePayload = false;
};

// Where the writer put each tensor, recorded as it wrote them.
struct WrittenTensor {
  std::string shard;  // file name
  uint64_t dataOffset = 0;  // from the start of the file
  uint64_t byteSize = 0;
  TestTensor tensor;
};

struct TestCheckpoint {
  std::filesystem::path dir;
  std::vector<std::string> shardNames;  // model-00001-of-0000n.safetensors, ... or model.safetensors
  std::map<std::string, WrittenTensor> tensors;
};

// Writes config.json, the shards (tensors split in module order, so a layer may straddle two shards, as in
// microsoft/phi-4) and the index into `dir` (created if needed).
TestCheckpoint writeTestCheckpoint(const std::filesystem::path& dir, const TestModelShape& shape = {},
                                   const WriteOptions& options = {});

// One shard: header with the given entries (data laid out in name order) and the payloads (or a hole of their
// size when `sparse`). Returns the offsets.
std::map<std::string, WrittenTensor> writeShard(const std::filesystem::path& file,
                                                const std::vector<TestTensor>& tensors, const nlohmann::json& metadata,
                                                bool sparse = false);
// A file with an exact header text and payload, for malformed headers.
void writeRawShard(const std::filesystem::path& file, const std::string& header, const std::vector<std::byte>& payload);

// Corruption helpers: edit a shard's header JSON in place (the payload is kept; the length field follows the new
// header), overwrite its length field, edit a JSON file.
nlohmann::json readShardHeader(const std::filesystem::path& file);
void editShardHeader(const std::filesystem::path& file, const std::function<void(nlohmann::json&)>& edit);
void setHeaderLengthField(const std::filesystem::path& file, uint64_t length);
void editJsonFile(const std::filesystem::path& file, const std::function<void(nlohmann::json&)>& edit);
void writeTextFile(const std::filesystem::path& file, const std::string& text);

}  // namespace phx::testing
