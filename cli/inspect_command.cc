// phalanx inspect DIR [--json] [--tensors]: what a checkpoint holds and whether Phalanx can load it.
#include <cstdio>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "model/checkpoint.h"

namespace phx::cli {
namespace {

using nlohmann::json;

// 14659507200 -> "14,659,507,200"
std::string grouped(uint64_t value) {
  const std::string digits = std::to_string(value);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string shapeText(const std::vector<int64_t>& shape) { return json(shape).dump(); }

struct Totals {
  uint64_t parameters = 0;
  std::map<std::string, uint64_t> bytesByDType;
};

Totals totalsOf(const Checkpoint& checkpoint) {
  Totals totals;
  for (const TensorInfo& tensor : checkpoint.tensors()) {
    totals.parameters += uint64_t(tensor.elementCount());
    totals.bytesByDType[std::string(dtypeName(tensor.dtype))] += tensor.byteSize;
  }
  return totals;
}

json configSummary(const ModelConfig& c) {
  return json{{"hidden_size", c.hiddenSize},
              {"intermediate_size", c.intermediateSize},
              {"num_hidden_layers", c.numLayers},
              {"num_attention_heads", c.numHeads},
              {"num_key_value_heads", c.numKvHeads},
              {"head_dim", c.headDim()},
              {"vocab_size", c.vocabSize},
              {"rope_theta", c.ropeTheta},
              {"max_position_embeddings", c.maxPositionEmbeddings},
              {"rms_norm_eps", c.rmsNormEps},
              {"torch_dtype", c.torchDtype}};
}

json toJson(const Checkpoint& checkpoint, bool withTensors) {
  const Totals totals = totalsOf(checkpoint);
  json shards = json::array();
  for (const ShardInfo& shard : checkpoint.shards()) {
    shards.push_back({{"file", shard.file.filename().string()}, {"bytes", shard.fileSize},
                      {"tensors", shard.tensorCount}});
  }
  json out = {{"directory", checkpoint.directory().string()},
              {"valid", true},
              {"config", configSummary(checkpoint.config())},
              {"parameters", totals.parameters},
              {"bytes_by_dtype", totals.bytesByDType},
              {"shards", shards},
              {"warnings", checkpoint.warnings()}};
  if (withTensors) {
    json tensors = json::array();
    for (const TensorInfo& tensor : checkpoint.tensors()) {
      tensors.push_back({{"name", tensor.name}, {"shape", tensor.shape}, {"dtype", dtypeName(tensor.dtype)},
                         {"shard", tensor.file.filename().string()}, {"bytes", tensor.byteSize}});
    }
    out["tensors"] = tensors;
  }
  return out;
}

void printText(const Checkpoint& checkpoint, bool withTensors) {
  const ModelConfig& c = checkpoint.config();
  const Totals totals = totalsOf(checkpoint);
  std::printf("checkpoint  %s\n", checkpoint.directory().c_str());
  std::printf("config      hidden %lld, intermediate %lld, layers %lld, heads %lld (kv %lld, head dim %lld), "
              "vocab %lld, rope theta %g, context %lld, rms eps %g, %s\n",
              (long long)c.hiddenSize, (long long)c.intermediateSize, (long long)c.numLayers, (long long)c.numHeads,
              (long long)c.numKvHeads, (long long)c.headDim(), (long long)c.vocabSize, c.ropeTheta,
              (long long)c.maxPositionEmbeddings, c.rmsNormEps, c.torchDtype.c_str());
  std::printf("parameters  %s\n", grouped(totals.parameters).c_str());
  for (const auto& [dtype, bytes] : totals.bytesByDType) {
    std::printf("bytes       %s %s\n", dtype.c_str(), grouped(bytes).c_str());
  }
  std::printf("shards      %zu\n", checkpoint.shards().size());
  for (const ShardInfo& shard : checkpoint.shards()) {
    std::printf("  %-40s %20s bytes %5lld tensors\n", shard.file.filename().c_str(), grouped(shard.fileSize).c_str(),
                (long long)shard.tensorCount);
  }
  if (withTensors) {
    std::printf("tensors     %zu\n", checkpoint.tensors().size());
    std::printf("  %-52s %-16s %-5s %s\n", "name", "shape", "dtype", "shard");
    for (const TensorInfo& tensor : checkpoint.tensors()) {
      std::printf("  %-52s %-16s %-5s %s\n", tensor.name.c_str(), shapeText(tensor.shape).c_str(),
                  std::string(dtypeName(tensor.dtype)).c_str(), tensor.file.filename().c_str());
    }
  }
  for (const std::string& warning : checkpoint.warnings()) std::printf("warning     %s\n", warning.c_str());
  std::printf("verdict     valid\n");
}

}  // namespace

int inspectCommand(int argc, char** argv) {
  const ArgParser parser =
      ArgParser("phalanx inspect DIR [--json] [--tensors]",
                "Summarises a Hugging Face checkpoint directory (config, parameter count, bytes by dtype, shards) "
                "and validates it: every shard's header, every tensor's bytes and shape against config.json. "
                "Exits 0 when valid, 1 when invalid (the error, naming the file, on stderr), 2 on usage errors.")
          .positional("DIR", "the model directory (config.json and safetensors shards)")
          .flag("json", "print one JSON object instead of text (on an invalid checkpoint: valid false and the error)")
          .flag("tensors", "also list every tensor: name, shape, dtype, shard (243 lines for Phi-4)");
  const auto args = parser.parse(argc, argv);
  if (!args) return 0;
  const std::string dir = args->positionals()[0];
  const bool asJson = args->has("json");
  try {
    const auto checkpoint = Checkpoint::open(dir);
    if (asJson) {
      std::printf("%s\n", toJson(*checkpoint, args->has("tensors")).dump(2).c_str());
    } else {
      printText(*checkpoint, args->has("tensors"));
    }
    return 0;
  } catch (const Error& error) {
    // The verdict goes to stdout with the rest; main() prints the error to stderr and exits 1.
    if (asJson) {
      const json verdict = {{"directory", dir}, {"valid", false}, {"error", error.what()},
                            {"error_kind", std::string(errorKindName(error.kind()))}};
      std::printf("%s\n", verdict.dump(2).c_str());
    } else {
      std::printf("verdict     invalid\n");
    }
    throw;
  }
}

}  // namespace phx::cli
