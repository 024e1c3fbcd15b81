// `phalanx inspect` as a user runs it: the real binary in a child process. A valid checkpoint gives exit 0 and a
// summary whose figures are computed here from the test model's dimensions; each bad checkpoint of the corruption
// table gives exit 1, a message naming the file on stderr, and no crash signal (also under AddressSanitizer).
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/common/cli_process.h"
#include "tests/model/checkpoint_corruptions.h"
#include "tests/model/test_checkpoint.h"

namespace phx::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

// The default test model (hidden 64, 4 heads of 16, 2 KV heads, MLP 96, 2 layers, vocab 256), counted by hand.
constexpr uint64_t kEmbedding = 256 * 64;
constexpr uint64_t kPerLayer = 64 + (64 + 2 * 32) * 64 + 64 * 64 + 64 + 2 * 96 * 64 + 64 * 96;
constexpr uint64_t kParameters = 2 * kEmbedding + 2 * kPerLayer + 64;

TEST(InspectCli, SummarisesAValidCheckpoint) {
  ScratchDir temp;
  const auto dir = temp.path() / "model";
  writeTestCheckpoint(dir);
  const ProcessResult text = runPhalanx({"inspect", dir.string()});
  EXPECT_EQ(text.exitCode, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("hidden 64, intermediate 96, layers 2, heads 4 (kv 2, head dim 16), vocab 256"));
  EXPECT_THAT(text.out, HasSubstr("rope theta 250000, context 512"));
  EXPECT_THAT(text.out, HasSubstr("parameters  " + std::to_string(kParameters / 1000) + "," +
                                  std::to_string(kParameters % 1000)));
  EXPECT_THAT(text.out, HasSubstr("BF16 " + std::to_string(2 * kParameters / 1000) + ","));
  EXPECT_THAT(text.out, HasSubstr(testShardName(3)));
  EXPECT_THAT(text.out, HasSubstr("verdict     valid"));
  EXPECT_THAT(text.out, Not(HasSubstr("model.layers.1.mlp.down_proj.weight")));  // the table needs --tensors

  const ProcessResult table = runPhalanx({"inspect", dir.string(), "--tensors"});
  EXPECT_EQ(table.exitCode, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("tensors     15"));
  EXPECT_THAT(table.out, ::testing::ContainsRegex("model\\.layers\\.1\\.mlp\\.down_proj\\.weight +\\[64,96\\] +BF16 +" +
                                                  std::string("model-00003-of-00003\\.safetensors")));
}

// Phi-4's exact shapes at full size, the payload a hole in sparse files: the figures issue 2 states.
TEST(InspectCli, ValidatesAFullSizePhi4Layout) {
  ScratchDir temp;
  const auto dir = temp.path() / "phi4";
  writeTestCheckpoint(dir, {.hidden = 5120, .heads = 40, .kvHeads = 10, .intermediate = 17920, .layers = 40,
                            .vocab = 100352}, {.shards = 6, .sparsePayload = true});
  const ProcessResult run = runPhalanx({"inspect", dir.string()});
  EXPECT_EQ(run.exitCode, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("layers 40, heads 40 (kv 10, head dim 128), vocab 100352"));
  EXPECT_THAT(run.out, HasSubstr("parameters  14,659,507,200"));
  EXPECT_THAT(run.out, HasSubstr("bytes       BF16 29,319,014,400"));
  EXPECT_THAT(run.out, HasSubstr("model-00006-of-00006.safetensors"));
  EXPECT_THAT(run.out, HasSubstr("verdict     valid"));
}

TEST(InspectCli, PrintsOneJsonObject) {
  ScratchDir temp;
  const auto dir = temp.path() / "model";
  writeTestCheckpoint(dir);
  const ProcessResult run = runPhalanx({"inspect", "--json", "--tensors", dir.string()});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const json j = json::parse(run.out);
  EXPECT_EQ(j["valid"], true);
  EXPECT_EQ(j["parameters"], kParameters);
  EXPECT_EQ(j["bytes_by_dtype"]["BF16"], 2 * kParameters);
  EXPECT_EQ(j["config"]["num_key_value_heads"], 2);
  EXPECT_EQ(j["config"]["rope_theta"], 250000.0);
  EXPECT_EQ(j["shards"].size(), 3u);
  EXPECT_EQ(j["shards"][1]["bytes"], std::filesystem::file_size(dir / testShardName(2)));
  ASSERT_EQ(j["tensors"].size(), 15u);
  EXPECT_EQ(j["tensors"][0]["name"], "model.embed_tokens.weight");
  EXPECT_EQ(j["tensors"][0]["shape"], json({256, 64}));
  EXPECT_EQ(j["tensors"][0]["shard"], testShardName(1));
}

// The production generator's output passes the loader's validation, and inspect's figures match config.json
// (parameters counted here from its fields) and the files on disk.
TEST(InspectCli, ValidatesTheGeneratorsTinyPreset) {
  ScratchDir temp;
  const auto dir = temp.path() / "tiny";
  const ProcessResult made = runPhalanx({"make-model", "--preset", "tiny", "--out", dir.string()});
  ASSERT_EQ(made.exitCode, 0) << made.err;
  const ProcessResult run = runPhalanx({"inspect", dir.string(), "--json", "--tensors"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const json j = json::parse(run.out);
  const json config = json::parse(std::ifstream(dir / "config.json"));
  const uint64_t hidden = config["hidden_size"], layers = config["num_hidden_layers"], vocab = config["vocab_size"];
  const uint64_t mlp = config["intermediate_size"], heads = config["num_attention_heads"];
  const uint64_t kvHeads = config["num_key_value_heads"], headDim = hidden / heads;
  const uint64_t perLayer = 2 * hidden + (heads + 2 * kvHeads) * headDim * hidden + hidden * heads * headDim +
                            3 * mlp * hidden;
  const uint64_t parameters = 2 * vocab * hidden + layers * perLayer + hidden;
  EXPECT_EQ(j["valid"], true);
  EXPECT_EQ(j["warnings"], json::array());  // e.g. the index's total_size agrees with the tensors
  EXPECT_EQ(j["parameters"], parameters);
  EXPECT_EQ(j["bytes_by_dtype"], json({{"BF16", 2 * parameters}}));
  EXPECT_EQ(j["tensors"].size(), 1 + 6 * layers + 2);
  for (const json& shard : j["shards"]) {
    EXPECT_EQ(shard["bytes"], std::filesystem::file_size(dir / shard["file"].get<std::string>())) << shard;
  }
}

TEST(InspectCli, UsageErrorsExitTwo) {
  ScratchDir temp;
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"inspect"}, {"inspect", temp.path().string(), "--colour"},
        {"inspect", temp.path().string(), temp.path().string()}}) {
    const ProcessResult run = runPhalanx(args);
    EXPECT_EQ(run.exitCode, 2) << run.err;
    EXPECT_FALSE(run.err.empty());
  }
  const ProcessResult help = runPhalanx({"inspect", "--help"});
  EXPECT_EQ(help.exitCode, 0);
  EXPECT_THAT(help.out, HasSubstr("--tensors"));
}

class InspectCliErrors : public ::testing::TestWithParam<CorruptionCase> {};

TEST_P(InspectCliErrors, ExitsOneNamingTheFile) {
  const CorruptionCase& bad = GetParam();
  ScratchDir temp;
  const auto dir = temp.path() / "model";
  writeTestCheckpoint(dir);
  bad.corrupt(dir);
  const std::string file = bad.file.empty() ? dir.filename().string() : bad.file;
  const ProcessResult text = runPhalanx({"inspect", dir.string()});
  EXPECT_EQ(text.signal, 0) << "killed by signal " << text.signal << ": " << text.err;
  EXPECT_EQ(text.exitCode, 1) << text.err;
  EXPECT_THAT(text.err, HasSubstr(file));
  EXPECT_THAT(text.err, HasSubstr(bad.says));
  EXPECT_THAT(text.err, Not(HasSubstr("Sanitizer")));
  EXPECT_THAT(text.out, HasSubstr("verdict     invalid"));

  const ProcessResult asJson = runPhalanx({"inspect", dir.string(), "--json"});
  EXPECT_EQ(asJson.exitCode, 1) << asJson.err;
  const json verdict = json::parse(asJson.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(verdict.is_object()) << asJson.out;
  EXPECT_EQ(verdict["valid"], false);
  EXPECT_THAT(verdict["error"].get<std::string>(), HasSubstr(bad.says));
}

INSTANTIATE_TEST_SUITE_P(Corruptions, InspectCliErrors, ::testing::ValuesIn(corruptionCases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace phx::testing
