#include "tests/model/checkpoint_corruptions.h"

#include <cstdint>

#include <nlohmann/json.hpp>

#include "tests/model/test_checkpoint.h"

namespace phx::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// The default 2-layer test model split in 3 shards, in module order:
//   shard 1: embed_tokens, layer 0 input_layernorm, qkv_proj, o_proj, post_attention_layernorm
//   shard 2: layer 0 gate_up_proj, down_proj, layer 1 input_layernorm, qkv_proj, o_proj
//   shard 3: layer 1 post_attention_layernorm, gate_up_proj, down_proj, model.norm, lm_head
const std::string kIndex = "model.safetensors.index.json";

fs::path shard(const fs::path& dir, int index) { return dir / testShardName(index); }

std::function<void(const fs::path&)> editHeader(int index, std::function<void(json&)> edit) {
  return [index, edit](const fs::path& dir) { editShardHeader(shard(dir, index), edit); };
}

std::function<void(const fs::path&)> editEntry(int index, const std::string& tensor, std::function<void(json&)> edit) {
  return editHeader(index, [tensor, edit](json& header) { edit(header.at(tensor)); });
}

std::function<void(const fs::path&)> editIndex(std::function<void(json&)> edit) {
  return [edit](const fs::path& dir) { editJsonFile(dir / kIndex, edit); };
}

// The header's JSON without the writer's padding: a little shorter than the length field says.
uint64_t headerLength(const fs::path& file) { return readShardHeader(file).dump().size(); }

// The tensors a shard's header lists, as the writer takes them.
std::vector<TestTensor> shardTensors(const fs::path& file) {
  std::vector<TestTensor> tensors;
  const json header = readShardHeader(file);
  for (const auto& [name, entry] : header.items()) {
    if (name != "__metadata__") tensors.push_back({name, entry["dtype"], entry["shape"]});
  }
  return tensors;
}

std::vector<CorruptionCase> makeCases() {
  const std::string l0 = "model.layers.0.", l1 = "model.layers.1.";
  return {
      {"MissingDirectory", [](const fs::path& dir) { fs::remove_all(dir); }, "", "not a directory"},
      {"MissingConfig", [](const fs::path& dir) { fs::remove(dir / "config.json"); }, "config.json", "missing"},
      {"UnreadableConfig",
       [](const fs::path& dir) {
         fs::remove(dir / "config.json");
         fs::create_directory(dir / "config.json");
       },
       "config.json", "not a regular file"},
      {"MalformedConfig", [](const fs::path& dir) { writeTextFile(dir / "config.json", "{\"hidden_size\": 64,"); },
       "config.json", "not valid JSON"},
      {"UnsupportedConfig",
       [](const fs::path& dir) {
         editJsonFile(dir / "config.json", [](json& c) { c["rope_scaling"] = {{"type", "longrope"}}; });
       },
       "config.json", "rope_scaling", ErrorKind::kUnsupported},
      {"ConfigContradictsShapes",
       [](const fs::path& dir) { editJsonFile(dir / "config.json", [](json& c) { c["intermediate_size"] = 128; }); },
       testShardName(2), "implies [256,64]"},
      {"MissingIndex", [](const fs::path& dir) { fs::remove(dir / kIndex); }, kIndex, "neither"},
      {"MalformedIndex", [](const fs::path& dir) { writeTextFile(dir / kIndex, "{\"weight_map\": {"); }, kIndex,
       "not valid JSON"},
      {"IndexWithoutWeightMap", editIndex([](json& index) { index.erase("weight_map"); }), kIndex, "weight_map"},
      {"IndexNamesMissingShard", [](const fs::path& dir) { fs::remove(shard(dir, 2)); }, testShardName(2), "missing"},
      {"IndexShardOutsideDirectory",
       editIndex([](json& index) { index["weight_map"]["model.norm.weight"] = "../" + testShardName(3); }), kIndex,
       "must name a file"},
      {"IndexShardNotAString", editIndex([](json& index) { index["weight_map"]["model.norm.weight"] = 3; }), kIndex,
       "must name a file"},
      {"IndexTensorAbsentFromShard", editHeader(2, [l1](json& h) { h.erase(l1 + "self_attn.o_proj.weight"); }), kIndex,
       "does not hold"},
      {"ShardTensorAbsentFromIndex",
       editIndex([l0](json& i) { i["weight_map"].erase(l0 + "mlp.gate_up_proj.weight"); }),
       testShardName(2), "does not map"},
      {"UnreadableShard",
       [](const fs::path& dir) {
         fs::remove(shard(dir, 2));
         fs::create_directory(shard(dir, 2));
       },
       testShardName(2), "not a regular file"},
      {"ShardShorterThanLengthField", [](const fs::path& dir) { fs::resize_file(shard(dir, 1), 5); }, testShardName(1),
       "truncated"},
      {"ShardShorterThanHeader",
       [](const fs::path& dir) { fs::resize_file(shard(dir, 1), 8 + headerLength(shard(dir, 1)) / 2); },
       testShardName(1), "runs beyond the file"},
      {"HeaderLengthBeyondFile",
       [](const fs::path& dir) { setHeaderLengthField(shard(dir, 1), fs::file_size(shard(dir, 1))); },
       testShardName(1), "runs beyond the file"},
      {"AbsurdHeaderLength", [](const fs::path& dir) { setHeaderLengthField(shard(dir, 1), uint64_t(1) << 62); },
       testShardName(1), "exceeds"},
      {"TruncatedPayload",
       [](const fs::path& dir) { fs::resize_file(shard(dir, 3), fs::file_size(shard(dir, 3)) - 10); },
       testShardName(3), "lie outside"},
      {"MalformedHeaderJson",
       [](const fs::path& dir) {
         writeRawShard(shard(dir, 1), R"({"model.embed_tokens.weight": {"dtype": "BF16", "shape": [256,)",
                       std::vector<std::byte>(64));
       },
       testShardName(1), "not valid JSON"},
      {"HeaderNotAnObject", [](const fs::path& dir) { writeRawShard(shard(dir, 1), "[1, 2, 3]", {}); },
       testShardName(1), "must be a JSON object"},
      {"MetadataNotStrings", editHeader(1, [](json& h) { h["__metadata__"] = {{"format", 1}}; }), testShardName(1),
       "__metadata__"},
      {"UnknownDtype", editEntry(2, l0 + "mlp.down_proj.weight", [](json& e) { e["dtype"] = "BF17"; }),
       testShardName(2), "unknown dtype \"BF17\""},
      {"NegativeShapeEntry", editEntry(2, l1 + "input_layernorm.weight", [](json& e) { e["shape"] = {-64}; }),
       testShardName(2), "non-negative integers"},
      {"FractionalShapeEntry", editEntry(2, l1 + "input_layernorm.weight", [](json& e) { e["shape"] = {64.5}; }),
       testShardName(2), "non-negative integers"},
      {"ShapeOverflow",
       editEntry(1, l0 + "input_layernorm.weight", [](json& e) { e["shape"] = {uint64_t(1) << 62, 4}; }),
       testShardName(1), "overflows"},
      {"MissingDataOffsets", editEntry(2, l1 + "self_attn.qkv_proj.weight", [](json& e) { e.erase("data_offsets"); }),
       testShardName(2), "data_offsets"},
      {"ByteSizeMismatch",
       editEntry(2, l1 + "self_attn.qkv_proj.weight",
                 [](json& e) { e["data_offsets"][1] = e["data_offsets"][1].get<uint64_t>() - 2; }),
       testShardName(2), "needs"},
      {"OffsetsReversed",
       editEntry(2, l1 + "self_attn.qkv_proj.weight",
                 [](json& e) { e["data_offsets"] = {e["data_offsets"][1], e["data_offsets"][0]}; }),
       testShardName(2), "end before they begin"},
      {"DataOutOfBounds",
       editHeader(3,
                  [](json& h) {
                    // Move model.norm.weight's bytes just past the last tensor's: the same size, off the end.
                    uint64_t end = 0;
                    for (auto it = h.begin(); it != h.end(); ++it) {
                      if (it.key() == "__metadata__") continue;
                      end = std::max(end, it.value()["data_offsets"][1].get<uint64_t>());
                    }
                    json& offsets = h["model.norm.weight"]["data_offsets"];
                    const uint64_t size = offsets[1].get<uint64_t>() - offsets[0].get<uint64_t>();
                    offsets = {end, end + size};
                  }),
       testShardName(3), "lie outside"},
      {"OverlappingTensors",
       editHeader(1,
                  [l0](json& h) {
                    h[l0 + "post_attention_layernorm.weight"]["data_offsets"] =
                        h[l0 + "input_layernorm.weight"]["data_offsets"];
                  }),
       testShardName(1), "overlaps"},
      {"ShapeContradictsConfig", editEntry(1, l0 + "self_attn.o_proj.weight", [](json& e) { e["shape"] = {32, 128}; }),
       testShardName(1), "has shape [32,128] but"},
      {"WeightDtypeNotFloat", editEntry(3, "model.norm.weight", [](json& e) { e["dtype"] = "I16"; }), testShardName(3),
       "must be BF16, F16 or F32"},
      {"MissingTensor",
       [l1](const fs::path& dir) {
         editShardHeader(shard(dir, 3), [l1](json& h) { h.erase(l1 + "mlp.down_proj.weight"); });
         editJsonFile(dir / kIndex, [l1](json& i) { i["weight_map"].erase(l1 + "mlp.down_proj.weight"); });
       },
       kIndex, "'model.layers.1.mlp.down_proj.weight' is missing"},
      {"UnexpectedTensor",
       [](const fs::path& dir) {
         const std::string extra = "model.layers.2.input_layernorm.weight";
         std::vector<TestTensor> tensors = shardTensors(shard(dir, 3));
         tensors.push_back({extra, "BF16", {64}});
         writeShard(shard(dir, 3), tensors, {{"format", "pt"}});
         editJsonFile(dir / kIndex, [&](json& i) { i["weight_map"][extra] = testShardName(3); });
       },
       testShardName(3), "unexpected tensor 'model.layers.2.input_layernorm.weight'"},
  };
}

}  // namespace

std::string testShardName(int index) { return "model-0000" + std::to_string(index) + "-of-00003.safetensors"; }

const std::vector<CorruptionCase>& corruptionCases() {
  static const std::vector<CorruptionCase> cases = makeCases();
  return cases;
}

}  // namespace phx::testing
