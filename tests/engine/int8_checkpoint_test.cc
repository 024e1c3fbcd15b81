// `phalanx quantize`'s checkpoint (model/quantized_checkpoint.h) on the generated tiny model: the validator and
// loader accept it, it loads as INT8 without quantizing, and its packed weights are byte-identical to quantizing
// the BF16 checkpoint while loading. Wrong uses are refused with the tensor named.
#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "kernels/quantize.h"
#include "model/quantized_checkpoint.h"
#include "model/safetensors_writer.h"
#include "tests/engine/engine_harness.h"

namespace phx::testing {
namespace {

namespace fs = std::filesystem;

fs::path quantizedTiny() {
  static const fs::path dir = [] {
    const fs::path out = fs::temp_directory_path() / ("phx-int8-ckpt-" + std::to_string(::getpid()));
    const auto source = Checkpoint::open(modelDir("tiny"));
    writeQuantizedCheckpoint(*source, out, quantizeBf16RowInt8, /*force=*/true);
    return out;
  }();
  return dir;
}

class Int8CheckpointTest : public ::testing::Test {
 protected:
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(quantizedTiny(), ec);
  }
};

void expectSameBytes(const PackedMatrix& a, const PackedMatrix& b, const std::string& what) {
  ASSERT_EQ(a.pieces.size(), b.pieces.size()) << what;
  for (size_t p = 0; p < a.pieces.size(); ++p) {
    const PackedWeight& x = a.pieces[p];
    const PackedWeight& y = b.pieces[p];
    ASSERT_EQ(x.type(), WeightType::kInt8) << what;
    ASSERT_EQ(y.type(), WeightType::kInt8) << what;
    ASSERT_EQ(x.rows(), y.rows()) << what;
    const size_t rows = size_t(x.paddedRows());
    EXPECT_EQ(std::memcmp(x.data(), y.data(), rows * size_t(x.paddedCols())), 0) << what << " piece " << p;
    EXPECT_EQ(std::memcmp(x.rowScales(), y.rowScales(), rows * 4), 0) << what << " scales, piece " << p;
    EXPECT_EQ(std::memcmp(x.rowSums(), y.rowSums(), rows * 4), 0) << what << " row sums, piece " << p;
  }
}

TEST_F(Int8CheckpointTest, ValidatesAndDescribesItself) {
  const auto checkpoint = Checkpoint::open(quantizedTiny());
  EXPECT_TRUE(isQuantizedCheckpoint(*checkpoint));
  const TensorInfo& qkv = checkpoint->info("model.layers.0.self_attn.qkv_proj.weight");
  EXPECT_EQ(qkv.dtype, DType::kI8);
  const TensorInfo& scale = checkpoint->info("model.layers.0.self_attn.qkv_proj.weight_scale");
  EXPECT_EQ(scale.dtype, DType::kF32);
  EXPECT_EQ(scale.shape, std::vector<int64_t>{qkv.shape[0]});
  EXPECT_EQ(checkpoint->info("model.embed_tokens.weight").dtype, DType::kBF16);
  EXPECT_EQ(checkpoint->info("lm_head.weight").dtype, DType::kI8);
  std::ifstream config(quantizedTiny() / "config.json");
  const auto json = nlohmann::json::parse(config);
  EXPECT_EQ(json["quantization_config"]["quant_method"], kQuantMethod);
  EXPECT_TRUE(fs::exists(quantizedTiny() / "tokenizer.json"));
}

TEST_F(Int8CheckpointTest, LoadsBitIdenticalToQuantizingAtLoad) {
  const auto original = Checkpoint::open(modelDir("tiny"));
  const auto quantized = Checkpoint::open(quantizedTiny());
  const RankShard shard = wholeModelShard(original->config());
  const ShardWeights atLoad = loadShardWeights(*original, shard, nullptr, WeightType::kInt8);
  const ShardWeights saved = loadShardWeights(*quantized, shard, nullptr, WeightType::kInt8);
  ASSERT_EQ(atLoad.layers.size(), saved.layers.size());
  for (size_t l = 0; l < atLoad.layers.size(); ++l) {
    const std::string layer = "layer " + std::to_string(l);
    expectSameBytes(atLoad.layers[l].qkv, saved.layers[l].qkv, layer + " qkv");
    expectSameBytes(atLoad.layers[l].oProj, saved.layers[l].oProj, layer + " o_proj");
    expectSameBytes(atLoad.layers[l].gateUp, saved.layers[l].gateUp, layer + " gate_up");
    expectSameBytes(atLoad.layers[l].down, saved.layers[l].down, layer + " down");
    EXPECT_EQ(atLoad.layers[l].inputNorm, saved.layers[l].inputNorm);
  }
  expectSameBytes(atLoad.lmHead, saved.lmHead, "lm_head");
  EXPECT_EQ(atLoad.embedding, saved.embedding);
  EXPECT_EQ(atLoad.bytes, saved.bytes);
}

TEST_F(Int8CheckpointTest, WrongUsesAreRefusedNamingTheTensor) {
  const auto quantized = Checkpoint::open(quantizedTiny());
  try {
    loadShardWeights(*quantized, wholeModelShard(quantized->config()), nullptr, WeightType::kBf16);
    ADD_FAILURE() << "loading INT8 matrices as BF16 must fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("model.layers.0.self_attn.qkv_proj.weight"), std::string::npos) << e.what();
  }
  try {
    writeQuantizedCheckpoint(*quantized, quantizedTiny().string() + "-again", quantizeBf16RowInt8, true);
    ADD_FAILURE() << "quantizing a quantized checkpoint must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("already INT8"), std::string::npos) << e.what();
  }
  const auto original = Checkpoint::open(modelDir("tiny"));
  EXPECT_THROW(writeQuantizedCheckpoint(*original, quantizedTiny(), quantizeBf16RowInt8, /*force=*/false), Error)
      << "a non-empty output directory needs force";
}

TEST_F(Int8CheckpointTest, AMissingScaleIsAnInvalidCheckpoint) {
  // The quantized checkpoint rewritten as one model.safetensors (which wins over an index) without one scale.
  const fs::path broken = quantizedTiny().string() + "-broken";
  fs::remove_all(broken);
  fs::create_directories(broken);
  fs::copy(quantizedTiny() / "config.json", broken / "config.json");
  const auto quantized = Checkpoint::open(quantizedTiny());
  const std::string dropped = "model.layers.1.mlp.down_proj.weight_scale";
  std::vector<SafetensorsEntry> entries;
  for (const TensorInfo& tensor : quantized->tensors()) {
    if (tensor.name != dropped) entries.push_back({tensor.name, tensor.dtype, tensor.shape});
  }
  SafetensorsWriter writer(broken / "model.safetensors", entries, {{"format", "pt"}});
  for (const SafetensorsEntry& entry : entries) {
    std::vector<std::byte> bytes(entry.byteSize());
    quantized->copyTensor(entry.name, bytes);
    writer.append(bytes.data(), bytes.size());
  }
  writer.finish();
  try {
    Checkpoint::open(broken);
    ADD_FAILURE() << "an INT8 tensor without its scale must be refused";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidCheckpoint);
    EXPECT_NE(message.find(dropped), std::string::npos) << message;
  }
  fs::remove_all(broken);
}

}  // namespace
}  // namespace phx::testing
