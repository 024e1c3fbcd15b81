// phalanx plan --model DIR --tp T [--pp P] ...: the shard plan a cluster of T x P workers would run, computed from
// DIR/config.json alone (no weights are read), as a table or as JSON. A plan that cannot work is refused with the
// constraint it breaks (exit 1); a malformed command line exits 2.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "model/config.h"
#include "partition/shard_memory.h"
#include "partition/shard_plan.h"
#include "partition/shard_plan_json.h"

namespace phx::cli {
namespace {

std::string rangeText(const IndexRange& range) {
  char text[48];
  std::snprintf(text, sizeof text, "[%lld, %lld)", (long long)range.begin, (long long)range.end());
  return text;
}

// 1234567 -> "1.23 MB": decimal units, as the budget message uses.
std::string humanBytes(int64_t bytes) {
  static const char* kUnits[] = {"B", "KB", "MB", "GB", "TB"};
  double value = double(bytes);
  int unit = 0;
  while (value >= 1000 && unit < 4) {
    value /= 1000;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.2f %s", value, kUnits[unit]);
  return text;
}

void printTable(const std::string& dir, const ModelConfig& c, const ClusterSpec& spec, const ShardPlan& plan) {
  std::printf("model       %s: %lld layers, %lld query heads (%lld KV, head dim %lld), MLP %lld, vocab %lld\n",
              dir.c_str(), (long long)c.numLayers, (long long)c.numHeads, (long long)c.numKvHeads,
              (long long)c.headDim(), (long long)c.intermediateSize, (long long)c.vocabSize);
  std::printf("cluster     tp %d x pp %d = %d workers; matrices %s (embedding BF16, norms f32); KV cache %lld bytes an "
              "element\n\n",
              plan.tp, plan.pp, plan.workers(), spec.matrices == WeightType::kInt8 ? "INT8" : "BF16",
              (long long)spec.kvBytesPerElement);
  std::printf("%6s %5s %4s  %-10s %-10s %-9s %-16s %-18s %12s %12s\n", "worker", "stage", "tp", "layers", "q heads",
              "kv heads", "mlp columns", "vocab rows", "weights", "KV/1k tok");
  for (const RankPlan& r : plan.ranks) {
    const RankShard& s = r.shard;
    std::string vocab = s.vocabRows.count > 0 ? rangeText(s.vocabRows) : "-";
    if (s.firstStage || s.lastStage) vocab += std::string(s.firstStage ? "e" : "") + (s.lastStage ? "h" : "");
    std::printf("%6d %5d %4d  %-10s %-10s %-9s %-16s %-18s %12s %12s\n", r.worker, r.stage, r.tpRank,
                rangeText(s.layers).c_str(), rangeText(s.queryHeads).c_str(), rangeText(s.kvHeads).c_str(),
                rangeText(s.mlpColumns).c_str(), vocab.c_str(), humanBytes(r.weightBytes).c_str(),
                humanBytes(r.kvBytesPer1kTokens).c_str());
  }
  std::printf("(vocab rows: e = embedding rows held, h = lm_head rows held)\n\n");

  int64_t weights = 0, kvPer1k = 0, largest = 0;
  for (const RankPlan& r : plan.ranks) {
    weights += r.weightBytes;
    kvPer1k += r.kvBytesPer1kTokens;
    largest = std::max(largest, r.weightBytes + r.kvBytes(spec.kvTokens));
  }
  const int64_t whole = shardWeightBytes(c, wholeModelShard(c));
  std::printf("weights     %s over all ranks (%lld bytes); the model on one rank: %s; replicated: %+.2f%%\n",
              humanBytes(weights).c_str(), (long long)weights, humanBytes(whole).c_str(),
              100.0 * double(weights - whole) / double(whole));
  std::printf("kv cache    %s per 1k tokens of context over all ranks (%lld bytes)\n", humanBytes(kvPer1k).c_str(),
              (long long)kvPer1k);
  std::printf("largest     %s for weights + KV of %lld tokens on one rank%s\n", humanBytes(largest).c_str(),
              (long long)spec.kvTokens,
              spec.rankMemoryBytes > 0 ? (", budget " + humanBytes(spec.rankMemoryBytes)).c_str() : "");
  std::printf("all-reduce  %lld bytes per token per forward pass (%lld all-reduces of %s hidden vectors, %lld "
              "bytes each)\n",
              (long long)plan.allReduceBytesPerToken, (long long)plan.allReducesPerToken, ShardPlan::kAllReduceDType,
              (long long)(c.hiddenSize * 4));
  if (plan.pp > 1) {
    std::printf("stage sends %lld bytes per token (%s hidden vectors across %d stage boundaries)\n",
                (long long)plan.stageSendBytesPerToken, ShardPlan::kAllReduceDType, plan.pp - 1);
  }
}

}  // namespace

int planCommand(int argc, char** argv) {
  const ArgParser parser =
      ArgParser("phalanx plan --model DIR --tp T [--pp P] [--stage-weights 1,2] [--rank-memory 8GB] "
                "[--kv-tokens N] [--json]",
                "Prints the shard plan of a cluster of T x P workers: each rank's layers, query and KV heads, MLP "
                "columns, vocab rows, weight bytes and KV bytes per 1k tokens, then totals and the all-reduce "
                "bytes per token. Reads DIR/config.json only. Exits 0 with a plan, 1 when the plan is refused (the "
                "constraint it breaks on stderr), 2 on usage errors.")
          .option("model", "DIR", "the model directory (its config.json)")
          .option("tp", "T", "tensor-parallel ranks per pipeline stage")
          .option("pp", "P", "pipeline stages", "1")
          .option("stage-weights", "W,W,..", "relative memory of each stage's nodes: layers split in proportion")
          .option("rank-memory", "BYTES", "each rank's budget for weights + KV cache, e.g. 8GB (0: unlimited)", "0")
          .option("kv-tokens", "N", "KV cache tokens each rank reserves, counted against --rank-memory", "4096")
          .option("kv-bytes", "B", "bytes per KV cache element (2: BF16, 4: f32)", "2")
          .option("dtype", "T", "matrix weights as the workers hold them: bf16 or int8", "bf16")
          .flag("json", "print one JSON object instead of the table");
  const auto args = parser.parse(argc, argv);
  if (!args) return 0;
  const std::string dir = args->str("model");
  ClusterSpec spec;
  spec.tp = int(args->integer("tp"));
  spec.pp = int(args->integer("pp"));
  if (args->has("stage-weights"))
    spec.stageMemoryWeights = args->numberList("stage-weights");
  spec.rankMemoryBytes = args->bytes("rank-memory");
  spec.kvTokens = args->integer("kv-tokens");
  spec.kvBytesPerElement = args->integer("kv-bytes");
  if (args->str("dtype") != "bf16" && args->str("dtype") != "int8") {
    throwInvalidArgument("--dtype: expected bf16 or int8, got '" + args->str("dtype") + "'");
  }
  spec.matrices = args->str("dtype") == "int8" ? WeightType::kInt8 : WeightType::kBf16;

  const ModelConfig config = loadModelConfig(std::filesystem::path(dir) / "config.json");
  ShardPlan plan;
  try {
    plan = makeShardPlan(config, spec);
  } catch (const Error& error) {
    // A well-formed request the model or the budget cannot meet: refused (1), not a usage error (2).
    std::fprintf(stderr, "phalanx plan: refused: %s\n", error.what());
    return 1;
  }
  if (args->has("json")) {
    std::printf("%s\n", toJson(plan).dump(2).c_str());
  } else {
    printTable(dir, config, spec, plan);
  }
  return 0;
}

}  // namespace phx::cli
