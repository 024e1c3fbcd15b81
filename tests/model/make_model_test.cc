// `phalanx make-model` and the generator behind it. Written checkpoints are read back with a minimal safetensors
// header reader written here (not the production loader), and compared with expectedTensors() and with the
// preset dimensions and the weight scaling scheme as the task states them (docs/checkpoints.md), computed here.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "model/checkpoint_writer.h"
#include "model/config.h"
#include "model/presets.h"
#include "model/random_weights.h"
#include "model/safetensors_writer.h"
#include "partition/tensor_table.h"
#include "tests/common/test_files.h"
#include "tests/common/test_process.h"

namespace phx {
namespace {

using ::phx::testing::slurp;

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;

const fs::path kTinyDir = ::phx::testing::testModelDir("tiny");
const fs::path kSmallDir = ::phx::testing::testModelDir("small");

// The presets' dimensions as the task states them; everything else as microsoft/phi-4's config.json.
ModelConfig phi4Shape(int64_t hidden, int64_t layers, int64_t heads, int64_t kvHeads, int64_t intermediate) {
  ModelConfig c;
  c.hiddenSize = hidden, c.numLayers = layers, c.numHeads = heads, c.numKvHeads = kvHeads;
  c.intermediateSize = intermediate, c.vocabSize = 100352, c.maxPositionEmbeddings = 16384;
  c.rmsNormEps = 1e-5, c.ropeTheta = 250000.0, c.bosTokenId = 100257, c.eosTokenId = 100265, c.padTokenId = 100349;
  return c;
}
const ModelConfig kTiny = phi4Shape(64, 2, 8, 2, 192);
const ModelConfig kSmall = phi4Shape(1024, 4, 8, 2, 3584);

class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name) : path_(fs::path(PHX_TEST_DATA_DIR) / "make_model_test" / name) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

struct ProcessResult {
  int exitCode = -1;  // -1 when killed by a signal
  std::string out, err;
};

// Runs PHX_BINARY with `args`. With `killAfter` set, sends SIGKILL as soon as stderr shows that text.
ProcessResult runPhalanx(std::vector<std::string> args, const std::string& killAfter = "") {
  args.insert(args.begin(), PHX_BINARY);
  const testing::SpawnedChild child =
      testing::spawn(args, {.out = testing::ChildOutput::pipe(), .err = testing::ChildOutput::pipe()});
  ProcessResult run;
  char buffer[4096];
  for (ssize_t n; (n = read(child.errFd, buffer, sizeof(buffer))) > 0;) {
    run.err.append(buffer, size_t(n));
    if (!killAfter.empty() && run.err.find(killAfter) != std::string::npos) kill(child.pid, SIGKILL);
  }
  for (ssize_t n; (n = read(child.outFd, buffer, sizeof(buffer))) > 0;) run.out.append(buffer, size_t(n));
  close(child.outFd), close(child.errFd);
  int status = 0;
  waitpid(child.pid, &status, 0);
  if (WIFEXITED(status)) run.exitCode = WEXITSTATUS(status);
  return run;
}

// A shard read back by hand: u64 little-endian header length, JSON header, data.
struct Shard {
  fs::path file;
  uint64_t headerLength = 0;
  std::string headerText;
  json header;
  uint64_t dataStart() const { return 8 + headerLength; }
};

Shard readShard(const fs::path& file) {
  Shard shard;
  shard.file = file;
  std::ifstream in(file, std::ios::binary);
  unsigned char length[8] = {};
  in.read(reinterpret_cast<char*>(length), 8);
  for (int i = 7; i >= 0; --i) shard.headerLength = (shard.headerLength << 8) | length[i];
  shard.headerText.resize(shard.headerLength);
  in.read(shard.headerText.data(), std::streamsize(shard.headerLength));
  shard.header = json::parse(shard.headerText);
  return shard;
}

std::vector<uint16_t> readTensor(const Shard& shard, const std::string& name) {
  const json& offsets = shard.header.at(name).at("data_offsets");
  const uint64_t begin = offsets[0], end = offsets[1];
  std::vector<uint16_t> values((end - begin) / 2);
  std::ifstream in(shard.file, std::ios::binary);
  in.seekg(std::streamoff(shard.dataStart() + begin));
  in.read(reinterpret_cast<char*>(values.data()), std::streamsize(end - begin));
  return values;
}

// The stated scheme (docs/checkpoints.md): {mean, std} of each tensor.
std::pair<double, double> statedDistribution(const ModelConfig& c, const std::string& name) {
  auto has = [&](const char* part) { return name.find(part) != std::string::npos; };
  if (has("layernorm") || name == "model.norm.weight") return {1.0, 0.1 / std::sqrt(3.0)};
  if (name == "model.embed_tokens.weight") return {0.0, 1.0};
  if (has("qkv_proj") || has("gate_up_proj")) return {0.0, 1.0 / std::sqrt(double(c.hiddenSize))};
  if (has("o_proj")) return {0.0, 1.0 / std::sqrt(double(c.hiddenSize) * 2 * double(c.numLayers))};
  if (has("down_proj")) return {0.0, 1.0 / std::sqrt(double(c.intermediateSize) * 2 * double(c.numLayers))};
  if (name == "lm_head.weight") return {0.0, 2.5 / std::sqrt(double(c.hiddenSize))};
  ADD_FAILURE() << "unexpected tensor " << name;
  return {0.0, 0.0};
}

double bf16Value(uint16_t bits) {
  const uint32_t word = uint32_t(bits) << 16;
  float value;
  std::memcpy(&value, &word, 4);
  return value;
}

// Everything a checkpoint directory must satisfy; returns the shards in index order.
std::vector<Shard> checkCheckpoint(const fs::path& dir, const ModelConfig& config, uint64_t maxShardBytes) {
  EXPECT_EQ(json::parse(slurp(dir / "config.json")), modelConfigToJson(config));
  EXPECT_EQ(slurp(dir / "generation_config.json"),
            "{\n  \"_from_model_config\": true,\n  \"bos_token_id\": 100257,\n  \"eos_token_id\": [\n    100265,\n"
            "    100257\n  ],\n  \"pad_token_id\": 100349,\n  \"transformers_version\": \"4.47.0\"\n}\n");
  for (const char* file : {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                           "special_tokens_map.json", "added_tokens.json"}) {
    EXPECT_TRUE(fs::is_regular_file(dir / file)) << file;
  }
  EXPECT_FALSE(fs::exists(dir / ".make-model.tmp"));
  const json index = json::parse(slurp(dir / "model.safetensors.index.json"));
  const std::vector<TensorSpec> expected = expectedTensors(config);
  EXPECT_EQ(index.at("weight_map").size(), expected.size());

  // Shards in index order; tensors assigned in expectedTensors order, so walking the shards in order and each
  // shard's tensors in that same order must give expectedTensors back.
  std::vector<Shard> shards;
  std::vector<std::string> shardNames;
  uint64_t totalBytes = 0;
  std::vector<uint64_t> shardBytes;
  for (const TensorSpec& spec : expected) {
    const std::string file = index.at("weight_map").at(spec.name);
    if (shardNames.empty() || shardNames.back() != file) {
      shardNames.push_back(file);
      shards.push_back(readShard(dir / file));
      shardBytes.push_back(0);
    }
    const json& entry = shards.back().header.at(spec.name);
    EXPECT_EQ(entry.at("dtype"), "BF16") << spec.name;
    EXPECT_EQ(entry.at("shape").get<std::vector<int64_t>>(), spec.shape) << spec.name;
    shardBytes.back() += uint64_t(spec.elementCount()) * 2;
    totalBytes += uint64_t(spec.elementCount()) * 2;
  }
  EXPECT_EQ(index.at("metadata").at("total_size").get<uint64_t>(), totalBytes);

  const size_t count = shards.size();
  for (size_t i = 0; i < count; ++i) {
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", i + 1, count);
    EXPECT_EQ(shardNames[i], name);
    const Shard& shard = shards[i];
    EXPECT_EQ(shard.headerLength % 8, 0u) << name;
    EXPECT_EQ(shard.headerText.find_last_not_of(' '), shard.headerText.find_last_of('}')) << "padding: " << name;
    EXPECT_EQ(shard.header.at("__metadata__"), json({{"format", "pt"}})) << name;
    // Offsets contiguous from 0 (in any tensor order), ending where the file ends.
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (const auto& [tensor, entry] : shard.header.items()) {
      if (tensor != "__metadata__") ranges.emplace_back(entry.at("data_offsets")[0], entry.at("data_offsets")[1]);
    }
    std::sort(ranges.begin(), ranges.end());
    uint64_t next = 0;
    for (const auto& [begin, end] : ranges) {
      EXPECT_EQ(begin, next) << name;
      next = end;
    }
    EXPECT_EQ(next, shardBytes[i]) << name;
    EXPECT_EQ(fs::file_size(shard.file), shard.dataStart() + next) << name;
    // At most maxShardBytes of data, unless one tensor alone is larger.
    EXPECT_TRUE(shardBytes[i] <= maxShardBytes || ranges.size() == 1) << name << " holds " << shardBytes[i];
  }
  return shards;
}

TEST(Presets, ParameterCountsAndShapes) {
  EXPECT_EQ(parameterCount(findModelPreset("phi4").config), 14'659'507'200);
  for (const auto& [name, config] : {std::pair{"tiny", kTiny}, std::pair{"small", kSmall},
                                     std::pair{"phi4-L4", phi4Shape(5120, 4, 40, 10, 17920)},
                                     std::pair{"phi4", phi4Shape(5120, 40, 40, 10, 17920)}}) {
    EXPECT_EQ(modelConfigToJson(findModelPreset(name).config), modelConfigToJson(config)) << name;
  }
  EXPECT_EQ(kTiny.headDim(), 8);
  EXPECT_EQ(kSmall.headDim(), 128);
}

TEST(Presets, UnknownNameListsTheKnownOnes) {
  try {
    findModelPreset("phi5");
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kInvalidArgument);
    EXPECT_THAT(error.what(), HasSubstr("'phi5'"));
    EXPECT_THAT(error.what(), HasSubstr("tiny, small, phi4-L4, phi4"));
  }
}

TEST(ShardPlan, Phi4SplitsLikeHuggingFace) {
  // microsoft/phi-4 ships model-00001-of-00006 .. model-00006-of-00006 at the default 5 GB.
  const std::vector<ShardPlan> shards = planShards(findModelPreset("phi4").config, kDefaultMaxShardBytes);
  ASSERT_EQ(shards.size(), 6u);
  uint64_t total = 0;
  for (const ShardPlan& shard : shards) {
    EXPECT_LE(shard.payloadBytes, 5'000'000'000u) << shard.fileName;
    EXPECT_TRUE(std::is_sorted(shard.tensors.begin(), shard.tensors.end(),
                               [](const TensorSpec& a, const TensorSpec& b) { return a.name < b.name; }));
    total += shard.payloadBytes;
  }
  EXPECT_EQ(total, 29'319'014'400u);
  EXPECT_EQ(shards.front().fileName, "model-00001-of-00006.safetensors");
  EXPECT_THROW(planShards(kTiny, 0), Error);
}

TEST(RandomWeights, AnyChunkingGivesTheSameBytes) {
  const uint64_t key = randomStreamKey(7, "model.layers.0.mlp.down_proj.weight");
  const UniformInit init{0.0f, 0.25f};
  const int64_t count = 300'001;
  std::vector<uint16_t> whole(count), pieces(count), parallel(count);
  fillUniformBf16(key, init, 0, count, whole.data());
  for (int64_t first = 0, step = 1; first < count; first += step, step = step * 3 + 1) {
    fillUniformBf16(key, init, first, std::min(step, count - first), pieces.data() + first);
  }
  EXPECT_EQ(whole, pieces);
  for (int threads : {2, 3, 7}) {
    fillUniformBf16Parallel(key, init, 0, count, parallel.data(), threads);
    EXPECT_EQ(whole, parallel) << threads << " threads";
  }
  std::vector<uint16_t> otherSeed(count), otherName(count);
  fillUniformBf16(randomStreamKey(8, "model.layers.0.mlp.down_proj.weight"), init, 0, count, otherSeed.data());
  fillUniformBf16(randomStreamKey(7, "model.layers.1.mlp.down_proj.weight"), init, 0, count, otherName.data());
  int64_t sameSeed = 0, sameName = 0;
  for (int64_t i = 0; i < count; ++i) sameSeed += whole[i] == otherSeed[i], sameName += whole[i] == otherName[i];
  // Independent streams agree only by chance: bf16 on [-0.25, 0.25) has a few thousand values, ~1/1000 collide.
  EXPECT_LT(sameSeed, count / 100);
  EXPECT_LT(sameName, count / 100);
}

TEST(SafetensorsWriter, RefusesWrongByteCounts) {
  ScratchDir scratch("writer");
  const std::vector<SafetensorsEntry> entries = {{"a", DType::kBF16, {3, 5}}, {"b", DType::kF32, {2}}};
  const std::string header = safetensorsHeader(entries, {{"format", "pt"}});
  // The safetensors library's bytes: length, compact JSON in this key order, spaces up to a multiple of 8.
  const std::string json = R"({"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[3,5],)"
                           R"("data_offsets":[0,30]},"b":{"dtype":"F32","shape":[2],"data_offsets":[30,38]}})";
  const size_t padded = (json.size() + 7) / 8 * 8;
  EXPECT_EQ(header, std::string({char(padded), 0, 0, 0, 0, 0, 0, 0}) + json + std::string(padded - json.size(), ' '));
  SafetensorsWriter writer(scratch.path() / "x.safetensors", entries, {});
  const std::vector<char> bytes(64, 'x');
  writer.append(bytes.data(), 30);
  EXPECT_THROW(writer.append(bytes.data(), 9), Error);
  EXPECT_THROW(writer.finish(), Error);
  writer.append(bytes.data(), 8);
  writer.finish();
}

TEST(MakeModel, TinyCheckpointIsComplete) { checkCheckpoint(kTinyDir, kTiny, kDefaultMaxShardBytes); }

TEST(MakeModel, SmallCheckpointIsComplete) { checkCheckpoint(kSmallDir, kSmall, kDefaultMaxShardBytes); }

// Per tensor: mean and std of the stored BF16 values against the stated distribution; all values inside the
// uniform's support and, for large tensors, reaching its ends.
void checkStatistics(const fs::path& dir, const ModelConfig& config) {
  for (const Shard& shard : checkCheckpoint(dir, config, kDefaultMaxShardBytes)) {
    for (const auto& [name, entry] : shard.header.items()) {
      if (name == "__metadata__") continue;
      const auto [mean, sigma] = statedDistribution(config, name);
      // BF16 rounding may step outside by half a unit in the last place: 2^-8 of the value at most.
      const double bound = sigma * std::sqrt(3.0) + (std::abs(mean) + sigma * std::sqrt(3.0)) / 256;
      double sum = 0, sumSquares = 0, lowest = 1e30, highest = -1e30;
      const std::vector<uint16_t> values = readTensor(shard, name);
      for (uint16_t bits : values) {
        const double x = bf16Value(bits) - mean;
        sum += x, sumSquares += x * x, lowest = std::min(lowest, x), highest = std::max(highest, x);
      }
      const double n = double(values.size());
      const double sampleMean = sum / n, sampleStd = std::sqrt(sumSquares / n - sampleMean * sampleMean);
      // Standard errors of a uniform sample: mean sigma/sqrt(n), std sigma*sqrt(0.2/n). 5 of them, and 5% at least.
      EXPECT_LT(std::abs(sampleMean), 5 * sigma / std::sqrt(n)) << name;
      EXPECT_NEAR(sampleStd / sigma, 1.0, std::max(0.05, 5 * std::sqrt(0.2 / n))) << name;
      EXPECT_GE(lowest, -bound) << name;
      EXPECT_LE(highest, bound) << name;
      if (n >= 10000) {
        EXPECT_GT(highest - lowest, 0.99 * 2 * sigma * std::sqrt(3.0)) << name;
      }
    }
  }
}

TEST(MakeModel, TinyWeightsFollowTheStatedScale) { checkStatistics(kTinyDir, kTiny); }

TEST(MakeModel, SmallWeightsFollowTheStatedScale) { checkStatistics(kSmallDir, kSmall); }

// Hash of every file but the (identical) tokenizer files.
std::map<std::string, std::string> checkpointFiles(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("model", 0) == 0 || name.rfind("config", 0) == 0) files[name] = slurp(entry.path());
  }
  return files;
}

TEST(MakeModel, SameSeedSameBytes) {
  ScratchDir scratch("seeds");
  const ProcessResult again = runPhalanx({"make-model", "--preset", "tiny", "--out", (scratch.path() / "a").string(),
                                "--seed", "1", "--threads", "3"});
  ASSERT_EQ(again.exitCode, 0) << again.err;
  const ProcessResult other = runPhalanx({"make-model", "--preset", "tiny", "--out", (scratch.path() / "b").string(),
                                "--seed", "2"});
  ASSERT_EQ(other.exitCode, 0) << other.err;
  const auto reference = checkpointFiles(kTinyDir), same = checkpointFiles(scratch.path() / "a"),
             different = checkpointFiles(scratch.path() / "b");
  ASSERT_EQ(reference.size(), 3u);  // config.json, one shard, the index
  EXPECT_TRUE(reference == same) << "seed 1 written twice differs";
  const std::string shard = "model-00001-of-00001.safetensors";
  EXPECT_NE(reference.at(shard), different.at(shard));
  EXPECT_EQ(reference.at(shard).size(), different.at(shard).size());
}

TEST(MakeModel, ShardSizeForcesSeveralShards) {
  ScratchDir scratch("shards");
  // 60000 bytes: a tiny layer's tensors (128 B to 48 KiB) need several shards; embeddings and lm_head (12.8 MB)
  // exceed it and get one each.
  const uint64_t limit = 60000;
  const ProcessResult run = runPhalanx({"make-model", "--preset", "tiny", "--out", scratch.path().string(),
                                        "--shard-size", std::to_string(limit), "--seed", "1"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const std::vector<Shard> shards = checkCheckpoint(scratch.path(), kTiny, limit);
  EXPECT_GT(shards.size(), 4u);
  EXPECT_THAT(run.err, HasSubstr("shard " + std::to_string(shards.size()) + "/" + std::to_string(shards.size())));
  // Greedy like Hugging Face: a shard is closed only when the next tensor would not fit.
  const std::vector<TensorSpec> expected = expectedTensors(kTiny);
  for (size_t i = 0, t = 0; i + 1 < shards.size(); ++i) {
    uint64_t bytes = 0;
    while (shards[i].header.contains(expected[t].name)) bytes += uint64_t(expected[t++].elementCount()) * 2;
    EXPECT_GT(bytes + uint64_t(expected[t].elementCount()) * 2, limit) << "shard " << i + 1;
  }
  // The same weights as the single-shard checkpoint of the same seed.
  const Shard single = readShard(kTinyDir / "model-00001-of-00001.safetensors");
  for (const Shard& shard : shards) {
    for (const auto& [name, entry] : shard.header.items()) {
      if (name != "__metadata__") {
        EXPECT_EQ(readTensor(shard, name), readTensor(single, name)) << name;
      }
    }
  }
}

TEST(MakeModel, RefusesANonEmptyDirectoryWithoutForce) {
  ScratchDir scratch("force");
  std::ofstream(scratch.path() / "notes.txt") << "keep me";
  const std::vector<std::string> args = {"make-model", "--preset", "tiny", "--out", scratch.path().string(),
                                         "--shard-size", "4MB"};
  const ProcessResult refused = runPhalanx(args);
  EXPECT_EQ(refused.exitCode, 2);
  EXPECT_THAT(refused.err, HasSubstr(scratch.path().string() + " is not empty"));
  EXPECT_THAT(refused.err, HasSubstr("--force"));
  EXPECT_FALSE(fs::exists(scratch.path() / "config.json"));

  std::vector<std::string> forced = args;
  forced.push_back("--force");
  ASSERT_EQ(runPhalanx(forced).exitCode, 0);
  EXPECT_TRUE(fs::exists(scratch.path() / "model-00003-of-00003.safetensors"));
  // Overwriting with fewer shards leaves none of the old ones behind; unrelated files stay.
  forced.erase(forced.begin() + 5, forced.begin() + 7);
  const ProcessResult rewritten = runPhalanx(forced);
  ASSERT_EQ(rewritten.exitCode, 0) << rewritten.err;
  checkCheckpoint(scratch.path(), kTiny, kDefaultMaxShardBytes);
  EXPECT_FALSE(fs::exists(scratch.path() / "model-00003-of-00003.safetensors"));
  EXPECT_EQ(slurp(scratch.path() / "notes.txt"), "keep me");
}

TEST(MakeModel, InterruptedRunLeavesNoCompleteLookingCheckpoint) {
  ScratchDir scratch("interrupted");
  const ProcessResult killed = runPhalanx(
      {"make-model", "--preset", "small", "--out", scratch.path().string(), "--shard-size", "20MB"}, "shard 2/");
  EXPECT_EQ(killed.exitCode, -1) << killed.err;
  EXPECT_FALSE(fs::exists(scratch.path() / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(scratch.path() / "config.json"));
  for (const auto& entry : fs::directory_iterator(scratch.path())) {
    EXPECT_EQ(entry.path().filename(), ".make-model.tmp") << "only the staging directory may exist";
  }
  // A leftover staging directory does not make the directory "non-empty" and is cleaned up by the next run.
  const ProcessResult rerun = runPhalanx({"make-model", "--preset", "tiny", "--out", scratch.path().string()});
  EXPECT_EQ(rerun.exitCode, 0) << rerun.err;
  checkCheckpoint(scratch.path(), kTiny, kDefaultMaxShardBytes);
}

TEST(MakeModel, BadArgumentsAreRefused) {
  ScratchDir scratch("args");
  const std::string out = (scratch.path() / "m").string();
  const ProcessResult unknown = runPhalanx({"make-model", "--preset", "nope", "--out", out});
  EXPECT_EQ(unknown.exitCode, 2);
  EXPECT_THAT(unknown.err, HasSubstr("unknown preset 'nope' (known presets: tiny, small, phi4-L4, phi4)"));
  for (const char* size : {"5XB", "0", "-3", "GB", ""}) {
    const ProcessResult bad = runPhalanx({"make-model", "--preset", "tiny", "--out", out, "--shard-size", size});
    EXPECT_EQ(bad.exitCode, 2) << size;
    EXPECT_THAT(bad.err, HasSubstr("--shard-size expects")) << size;
  }
  EXPECT_EQ(runPhalanx({"make-model", "--out", out}).exitCode, 2);
  EXPECT_EQ(runPhalanx({"make-model", "--preset", "tiny", "--out", out, "--seed", "x"}).exitCode, 2);
  std::ofstream(scratch.path() / "file") << "x";
  const ProcessResult notDir =
      runPhalanx({"make-model", "--preset", "tiny", "--out", (scratch.path() / "file").string()});
  EXPECT_EQ(notDir.exitCode, 2);
  EXPECT_THAT(notDir.err, HasSubstr("is not a directory"));
  EXPECT_FALSE(fs::exists(out));
}

TEST(MakeModel, HelpListsPresetsWithSizes) {
  const ProcessResult help = runPhalanx({"make-model", "--help"});
  EXPECT_EQ(help.exitCode, 0);
  EXPECT_THAT(help.out, ContainsRegex("phi4 +14,659,507,200 parameters +29.32 GB"));
  EXPECT_THAT(help.out, ContainsRegex("phi4-L4 +[0-9,]+ parameters"));
  EXPECT_THAT(help.out, ContainsRegex("small +[0-9,]+ parameters"));
  EXPECT_THAT(help.out, ContainsRegex("tiny +[0-9,]+ parameters"));
}

}  // namespace
}  // namespace phx
