#include "tests/model/test_checkpoint.h"

#include <stdlib.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace phx::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

uint64_t dtypeSize(const std::string& dtype) {
  static const std::map<std::string, uint64_t> kSizes = {
      {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2}, {"BF16", 2},
      {"I32", 4},  {"U32", 4}, {"F32", 4}, {"F64", 8}, {"I64", 8}, {"U64", 8}};
  auto it = kSizes.find(dtype);
  if (it == kSizes.end()) throw std::invalid_argument("test writer: unknown dtype " + dtype);
  return it->second;
}

std::string readFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("test writer: cannot read " + file.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void writeFile(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  if (!out) throw std::runtime_error("test writer: cannot write " + file.string());
}

std::string lengthField(uint64_t length) {
  std::string field(8, '\0');
  for (int i = 0; i < 8; ++i) field[i] = char((length >> (8 * i)) & 0xff);
  return field;
}

uint64_t readLengthField(const std::string& bytes) {
  uint64_t length = 0;
  for (int i = 7; i >= 0; --i) length = (length << 8) | uint8_t(bytes.at(i));
  return length;
}

std::string shardFileName(int index, int count) {
  char name[64];
  std::snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", index, count);
  return name;
}

}  // namespace

uint64_t TestTensor::byteSize() const {
  uint64_t bytes = dtypeSize(dtype);
  for (int64_t dim : shape) bytes *= uint64_t(dim);
  return bytes;
}

json testConfigJson(const TestModelShape& s) {
  return json{{"_name_or_path", "microsoft/phi-4"},
              {"architectures", {"Phi3ForCausalLM"}},
              {"attention_bias", false},
              {"attention_dropout", 0.0},
              {"bos_token_id", 1},
              {"embd_pdrop", 0.0},
              {"eos_token_id", 2},
              {"hidden_act", "silu"},
              {"hidden_size", s.hidden},
              {"initializer_range", 0.02},
              {"intermediate_size", s.intermediate},
              {"max_position_embeddings", 512},
              {"model_type", "phi3"},
              {"num_attention_heads", s.heads},
              {"num_hidden_layers", s.layers},
              {"num_key_value_heads", s.kvHeads},
              {"original_max_position_embeddings", 512},
              {"pad_token_id", 3},
              {"resid_pdrop", 0.0},
              {"rms_norm_eps", 1e-05},
              {"rope_scaling", nullptr},
              {"rope_theta", 250000},
              {"sliding_window", nullptr},
              {"tie_word_embeddings", false},
              {"torch_dtype", "bfloat16"},
              {"transformers_version", "4.47.0"},
              {"use_cache", true},
              {"vocab_size", s.vocab}};
}

std::vector<TestTensor> testModelTensors(const TestModelShape& s) {
  // transformers' Phi3: qkv_proj stacks Q (heads*headDim) over K and V (kvHeads*headDim each); gate_up_proj
  // stacks gate over up (intermediate each); matrices are [out, in].
  const int64_t headDim = s.hidden / s.heads;
  std::vector<TestTensor> tensors = {{"model.embed_tokens.weight", "BF16", {s.vocab, s.hidden}}};
  for (int64_t layer = 0; layer < s.layers; ++layer) {
    const std::string p = "model.layers." + std::to_string(layer) + ".";
    tensors.push_back({p + "input_layernorm.weight", "BF16", {s.hidden}});
    tensors.push_back({p + "self_attn.qkv_proj.weight", "BF16", {(s.heads + 2 * s.kvHeads) * headDim, s.hidden}});
    tensors.push_back({p + "self_attn.o_proj.weight", "BF16", {s.hidden, s.heads * headDim}});
    tensors.push_back({p + "post_attention_layernorm.weight", "BF16", {s.hidden}});
    tensors.push_back({p + "mlp.gate_up_proj.weight", "BF16", {2 * s.intermediate, s.hidden}});
    tensors.push_back({p + "mlp.down_proj.weight", "BF16", {s.hidden, s.intermediate}});
  }
  tensors.push_back({"model.norm.weight", "BF16", {s.hidden}});
  tensors.push_back({"lm_head.weight", "BF16", {s.vocab, s.hidden}});
  return tensors;
}

namespace {

uint64_t nameSeed(const std::string& name) {
  uint64_t seed = 1469598103934665603ull;  // FNV-1a
  for (char c : name) seed = (seed ^ uint8_t(c)) * 1099511628211ull;
  return seed;
}

std::byte mixByte(uint64_t seed, uint64_t i) {
  uint64_t x = (seed + i) * 0x9E3779B97F4A7C15ull;
  x ^= x >> 29;
  return std::byte(x >> 56);
}

}  // namespace

std::byte payloadByte(const std::string& name, uint64_t i) { return mixByte(nameSeed(name), i); }

std::map<std::string, WrittenTensor> writeShard(const fs::path& file, const std::vector<TestTensor>& tensors,
                                                const json& metadata, bool sparse) {
  std::vector<TestTensor> byName = tensors;
  std::sort(byName.begin(), byName.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  json header = json::object();
  if (!metadata.is_null()) header["__metadata__"] = metadata;
  std::string payload;
  uint64_t payloadSize = 0;
  std::map<std::string, WrittenTensor> written;
  for (const TestTensor& tensor : byName) {
    const uint64_t begin = payloadSize;
    payloadSize += tensor.byteSize();
    const uint64_t seed = nameSeed(tensor.name);
    for (uint64_t i = 0; !sparse && i < tensor.byteSize(); ++i) payload.push_back(char(mixByte(seed, i)));
    header[tensor.name] = {{"dtype", tensor.dtype}, {"shape", tensor.shape}, {"data_offsets", {begin, payloadSize}}};
    written[tensor.name] = {file.filename().string(), begin, tensor.byteSize(), tensor};
  }
  // Like the safetensors library: the header is padded with spaces to a multiple of 8 bytes.
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  for (auto& [name, entry] : written) entry.dataOffset += 8 + text.size();
  writeFile(file, lengthField(text.size()) + text + payload);
  if (sparse) fs::resize_file(file, 8 + text.size() + payloadSize);
  return written;
}

void writeRawShard(const fs::path& file, const std::string& header, const std::vector<std::byte>& payload) {
  std::string bytes = lengthField(header.size()) + header;
  for (std::byte b : payload) bytes.push_back(char(b));
  writeFile(file, bytes);
}

TestCheckpoint writeTestCheckpoint(const fs::path& dir, const TestModelShape& shape, const WriteOptions& options) {
  fs::create_directories(dir);
  TestCheckpoint checkpoint;
  checkpoint.dir = dir;
  writeTextFile(dir / "config.json", testConfigJson(shape).dump(2));
  const std::vector<TestTensor> tensors = testModelTensors(shape);
  const int shardCount = std::max(options.shards, 1);
  json weightMap = json::object();
  uint64_t totalSize = 0;
  for (int shard = 0; shard < shardCount; ++shard) {
    const size_t begin = tensors.size() * shard / shardCount;
    const size_t end = tensors.size() * (shard + 1) / shardCount;
    const std::string name = options.shards == 0 ? "model.safetensors" : shardFileName(shard + 1, shardCount);
    const std::vector<TestTensor> part(tensors.begin() + begin, tensors.begin() + end);
    for (auto& [tensor, written] : writeShard(dir / name, part, options.metadata, options.sparsePayload)) {
      weightMap[tensor] = name;
      totalSize += written.byteSize;
      checkpoint.tensors[tensor] = written;
    }
    checkpoint.shardNames.push_back(name);
  }
  if (options.shards > 0) {
    writeTextFile(dir / "model.safetensors.index.json",
                  json{{"metadata", {{"total_size", totalSize}}}, {"weight_map", weightMap}}.dump(2));
  }
  if (options.extraFiles) {
    writeTextFile(dir / "added_tokens.json", R"({"<|im_start|>": 100264})");
    writeTextFile(dir / "generation_config.json", R"({"bos_token_id": 1, "eos_token_id": 2})");
    writeTextFile(dir / "tokenizer.json", "{}");
  }
  return checkpoint;
}

json readShardHeader(const fs::path& file) {
  const std::string bytes = readFile(file);
  return json::parse(bytes.substr(8, readLengthField(bytes)));
}

void editShardHeader(const fs::path& file, const std::function<void(json&)>& edit) {
  const std::string bytes = readFile(file);
  const uint64_t length = readLengthField(bytes);
  json header = json::parse(bytes.substr(8, length));
  edit(header);
  const std::string text = header.dump();
  writeFile(file, lengthField(text.size()) + text + bytes.substr(8 + length));
}

void setHeaderLengthField(const fs::path& file, uint64_t length) {
  std::string bytes = readFile(file);
  bytes.replace(0, 8, lengthField(length));
  writeFile(file, bytes);
}

void editJsonFile(const fs::path& file, const std::function<void(json&)>& edit) {
  json value = json::parse(readFile(file));
  edit(value);
  writeFile(file, value.dump(2));
}

void writeTextFile(const fs::path& file, const std::string& text) { writeFile(file, text); }

}  // namespace phx::testing
