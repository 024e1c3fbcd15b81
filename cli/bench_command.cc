// phalanx bench --model DIR [--threads N] [--prompt 512] [--gen 32] [--batch 1,16] [--reps R] [--json]: prefill
// (pp) and decode (tg) tokens/s of the whole model in this process, like llama-bench, each beside the limit this
// machine sets, measured in the same run: decode by memory bandwidth (the weights are read once per step), prefill
// by the peak rate of the arithmetic the matmul uses for BF16 weights here (f32 FMA on CPUs where vdpbf16ps is
// slow; vdpbf16ps where it is faster, e.g. AMD Zen 4), with the fraction of the peak f32 FMA rate beside it. Also
// where a step's time goes: matmuls against the engine's own overhead (attention, norms, RoPE, fork/join).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/bench_record.h"
#include "cli/commands.h"
#include "common/error.h"
#include "coordinator/block_allocator.h"
#include "kernels/hardware_limits.h"
#include "kernels/matmul.h"
#include "kernels/roofline.h"
#include "worker/local_engine.h"

namespace phx::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Case {
  std::string test;  // "pp512", "tg32"
  bool prefill = false;
  int64_t batch = 1;
  int64_t tokens = 0;  // per sequence
};

struct CaseResult {
  Case spec;
  std::vector<double> tokensPerSecond;  // one per repetition
  // Decode: per repetition, the better of the bandwidth probes just before and just after it (bytes/s).
  std::vector<double> bandwidthPerRep;
  std::vector<double> limitPerRep;      // tokens/s, what each repetition is judged against
  double limit = 0;                     // tokens/s: their mean
  std::string bound;                    // "bandwidth", "f32 FMA" or "bf16 dot"
  double f32FmaLimit = 0;               // tokens/s the peak f32 FMA rate allows (the issue's prefill yardstick)
  ops::OpProfile profile;               // summed over the timed repetitions
  double seconds = 0;                   // wall time of the timed repetitions
  WeightType weights = WeightType::kBf16;  // the engine's matrices in this case
  std::string kvDtype = "bf16";
  double decodeBytesPerStep = 0;        // of that engine (decode cases)
};

ArgParser parser() {
  ArgParser p("phalanx bench --model DIR [options]\n"
              "       phalanx bench --model DIR --tp T [--pp P] [--cluster HOST:PORT,...] [options]",
              "Measures prefill (ppN: N prompt tokens per sequence) and decode (tgN: N tokens per sequence from an "
              "empty context) throughput, mean ± sd over repetitions after a warm-up, beside this machine's limits "
              "measured in the same run: read bandwidth / weight bytes per step for decode, the peak rate of the "
              "matmul's arithmetic / FLOPs per token for prefill (a batch of decodes is bound by whichever is "
              "lower), and each figure's fraction of the peak f32 FMA rate. With --tp, --pp or --cluster: decode "
              "tokens/s through a cluster (ClusterExecutor) at each --batch, and the prefill of one --prompt (only when "
              "given; neither given: decode at batch 1), beside the same model in this process with as many threads as the "
              "cluster has workers, alternating repetitions, the share of each step the workers spend computing, "
              "communicating and waiting, and the bytes a step's all-reduces carry; without --cluster, T x P workers "
              "are started here (one thread, one core each).");
  p.option("model", "DIR", "checkpoint directory")
      .option("threads", "N", "compute threads", std::to_string(std::thread::hardware_concurrency()))
      .option("prompt", "N", "prompt tokens per sequence for the pp test (0: skip; through a cluster: only when given)",
              "512")
      .option("gen", "N", "generated tokens per sequence for the tg test (0: skip)", "32")
      .option("batch", "LIST", "sequences decoded together, e.g. 1,16 (through a cluster: only when given)", "1,16")
      .option("pp-batch", "LIST", "prompts prefilled per pp case (each prefill step holds up to --ubatch tokens "
                                  "already, so more prompts mostly add time)", "1")
      .option("ubatch", "N", "most tokens per step", "512")
      .option("reps", "R", "timed repetitions per case", "3")
      .option("bandwidth-gib", "N", "GiB streamed to measure the read bandwidth (keep it far above the L3)", "4")
      .option("dtype", "LIST", "matrix weights, one engine after the other: bf16, int8 (quantized while loading; "
                               "prefill bound by the peak VNNI rate), auto (the checkpoint's own); e.g. bf16,int8",
              "auto")
      .option("kv-dtype", "T", "KV cache: bf16, int8 or f32", "bf16")
      .option("tp", "T", "through a cluster: tensor-parallel ranks per stage (2 when only --pp or --cluster is given)")
      .option("pp", "P", "through a cluster: pipeline stages (1 when not given)")
      .option("cluster", "LIST", "through a cluster: running workers, HOST:PORT by worker index (default: start them "
                                 "here)")
      .option("candidates", "K", "through a cluster: logit candidates per row the workers return",
              std::to_string(kDefaultCandidates))
      .option("local-threads", "N", "through a cluster: threads of the in-process comparison (0: skip it; default: "
                                    "the worker count)")
      .option("allreduce-dtype", "T", "through a cluster: what all-reduces send, f32 or bf16 (half the bytes)", "f32")
      .flag("json", "print one JSON object per case on stdout (the table goes to stderr)");
  return p;
}

double mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return sum / double(v.size());
}

double stddev(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double m = mean(v);
  double sum = 0;
  for (double x : v) sum += (x - m) * (x - m);
  return std::sqrt(sum / double(v.size() - 1));
}

// Multiply-adds of the decoder layers' matmuls per token (FLOPs / 2).
double layerMacsPerToken(const ModelConfig& c) {
  const double perLayer = double(c.hiddenSize) * double(c.qkvRows() + c.qDim() + 3 * c.intermediateSize);
  return perLayer * double(c.numLayers);
}

// Attention FLOPs of one token at context `context`: QK^T and PV over every head of every layer.
double attentionFlops(const ModelConfig& c, double context) {
  return 4.0 * double(c.qDim()) * context * double(c.numLayers);
}

// FLOPs per prompt token: every token runs the layers; only each sequence's last one runs lm_head.
double prefillFlopsPerToken(const ModelConfig& c, int64_t promptTokens) {
  const double lmHead = 2.0 * double(c.vocabSize) * double(c.hiddenSize) / double(promptTokens);
  return 2.0 * layerMacsPerToken(c) + attentionFlops(c, double(promptTokens + 1) / 2) + lmHead;
}

double decodeFlopsPerToken(const ModelConfig& c, int64_t genTokens) {
  return 2.0 * (layerMacsPerToken(c) + double(c.vocabSize) * double(c.hiddenSize)) +
         attentionFlops(c, double(genTokens + 1) / 2);
}

// Bytes one decode step reads: every weight but the embedding table, one embedding row per sequence, and each
// sequence's cached keys and values (on average half of the generated context).
double decodeBytesPerStep(const LocalEngine& engine, int64_t batch, int64_t genTokens) {
  const ShardWeights& w = engine.weights();
  const double embedding = double(w.embedding.size() * sizeof(uint16_t));
  const double kv = double(engine.cache().shape().bytesPerToken()) * double(genTokens) / 2;
  return double(w.bytes) - embedding + double(batch) * (2.0 * double(w.config.hiddenSize) + kv);
}

// One repetition: `batch` sequences, each prefilling `tokens` prompt tokens (ubatch tokens a step at most) or
// decoding `tokens` tokens one a step. Returns the seconds taken.
double runOnce(LocalEngine& engine, const Case& c, int64_t ubatch) {
  ModelRunner& runner = engine.runner();
  BlockAllocator blocks(runner.kvBlockCount(), runner.kvBlockSize());
  std::vector<BlockTable> tables(size_t(c.batch));
  for (BlockTable& table : tables) {
    if (!blocks.grow(table, c.tokens)) throwInvalidArgument("bench: the KV cache is too small for the case");
  }
  const int32_t token = 9906;  // "Hello": any id; the work does not depend on it
  const auto start = Clock::now();
  if (c.prefill) {
    for (int64_t s = 0; s < c.batch; ++s) {
      for (int64_t done = 0; done < c.tokens;) {
        const int64_t chunk = std::min(ubatch, c.tokens - done);
        StepBatch step;
        step.tokens.assign(size_t(chunk), token);
        step.sequences.push_back({done, chunk, tables[size_t(s)], done + chunk == c.tokens ? LogitsFor::kLast
                                                                                            : LogitsFor::kNone});
        runner.run(step);
        done += chunk;
      }
    }
  } else {
    for (int64_t position = 0; position < c.tokens; ++position) {
      StepBatch step;
      step.tokens.assign(size_t(c.batch), token);
      for (int64_t s = 0; s < c.batch; ++s) step.sequences.push_back({position, 1, tables[size_t(s)]});
      runner.run(step);
    }
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A decode case is bracketed by bandwidth probes, one pass between repetitions (outside the timed runs).
CaseResult runCase(LocalEngine& engine, const Case& c, int64_t ubatch, int64_t reps, const ReadBandwidthProbe& probe) {
  CaseResult result;
  result.spec = c;
  runOnce(engine, c, ubatch);  // warm-up: page in the weights, spin up the threads
  engine.runner().resetProfile();
  double probedBefore = c.prefill ? 0 : probe.passGBs() * 1e9;
  for (int64_t r = 0; r < reps; ++r) {
    const double seconds = runOnce(engine, c, ubatch);
    result.seconds += seconds;
    result.tokensPerSecond.push_back(double(c.batch * c.tokens) / seconds);
    if (!c.prefill) {
      const double probedAfter = probe.passGBs() * 1e9;
      result.bandwidthPerRep.push_back(std::max(probedBefore, probedAfter));
      probedBefore = probedAfter;
    }
  }
  result.profile = engine.runner().profile();
  return result;
}

// INT8 weights compute with vpdpbusd (kernels/matmul_int8.h): their compute limit is the peak VNNI rate.
void applyLimits(CaseResult& result, const ModelConfig& config, const HardwareLimits& limits) {
  const Case& c = result.spec;
  const double flops = c.prefill ? prefillFlopsPerToken(config, c.tokens) : decodeFlopsPerToken(config, c.tokens);
  const bool int8 = result.weights == WeightType::kInt8;
  const double byCompute = (int8 ? limits.peakVnniOpsPerSecond : limits.peakMatmulFlopsPerSecond) / flops;
  result.f32FmaLimit = limits.peakF32FlopsPerSecond / flops;
  result.bound = int8 ? "int8 vnni" : limits.matmulArithmetic;
  result.limitPerRep.assign(result.tokensPerSecond.size(), byCompute);
  if (!c.prefill) {
    std::vector<double> byBandwidth;
    for (double bandwidth : result.bandwidthPerRep) {
      byBandwidth.push_back(double(c.batch) * bandwidth / result.decodeBytesPerStep);
    }
    if (mean(byBandwidth) <= byCompute) result.bound = "bandwidth";
    for (size_t r = 0; r < byBandwidth.size(); ++r) result.limitPerRep[r] = std::min(byCompute, byBandwidth[r]);
  }
  result.limit = mean(result.limitPerRep);
}

// Each repetition's rate over its own limit, averaged.
double limitFraction(const CaseResult& r) {
  std::vector<double> fractions;
  for (size_t i = 0; i < r.tokensPerSecond.size(); ++i) fractions.push_back(r.tokensPerSecond[i] / r.limitPerRep[i]);
  return mean(fractions);
}

// "matmul 95.1%, attention 1.2%, ..., other 0.4%": shares of the timed wall time.
std::string profileText(const CaseResult& r) {
  std::string text;
  char item[64];
  for (size_t op = 0; op < size_t(ops::Op::kCount); ++op) {
    std::snprintf(item, sizeof(item), "%s%s %.1f%%", text.empty() ? "" : ", ",
                  std::string(ops::opName(ops::Op(op))).c_str(), 100 * r.profile.seconds[op] / r.seconds);
    text += item;
  }
  std::snprintf(item, sizeof(item), ", other %.1f%%", 100 * (1 - r.profile.total() / r.seconds));
  return text + item;
}

json gigabytesPerSecond(const std::vector<double>& bytesPerSecond) {
  json values = json::array();
  for (double rate : bytesPerSecond) values.push_back(rate / 1e9);
  return values;
}

// The case as its record: every figure --json prints, and the table shows (benchTable).
BenchRecord caseRecord(const CaseResult& r, const HardwareLimits& limits) {
  json shares;
  for (size_t op = 0; op < size_t(ops::Op::kCount); ++op) {
    shares[std::string(ops::opName(ops::Op(op)))] = r.profile.seconds[op] / r.seconds;
  }
  shares["other"] = 1 - r.profile.total() / r.seconds;
  const double tps = mean(r.tokensPerSecond);
  return {{"test", r.spec.test}, {"batch", r.spec.batch}, {"threads", limits.threads},
          {"dtype", weightTypeName(r.weights)}, {"kv_dtype", r.kvDtype},
          {"peak_vnni_gop_s", limits.peakVnniOpsPerSecond / 1e9},
          {"tokens_per_s", tps}, {"tokens_per_s_sd", stddev(r.tokensPerSecond)},
          {"tokens_per_s_per_rep", r.tokensPerSecond}, {"decode_bytes_per_step", r.decodeBytesPerStep},
          {"limit_tokens_per_s", r.limit}, {"limit_fraction", limitFraction(r)}, {"bound", r.bound},
          {"read_bandwidth_gb_s_per_rep", gigabytesPerSecond(r.bandwidthPerRep)},
          {"reps", r.tokensPerSecond.size()}, {"read_bandwidth_gb_s", limits.readBandwidthBytesPerSecond / 1e9},
          {"peak_f32_gflop_s", limits.peakF32FlopsPerSecond / 1e9},
          {"peak_bf16_dot_gflop_s", limits.peakBf16DotFlopsPerSecond / 1e9},
          {"f32_fma_limit_tokens_per_s", r.f32FmaLimit}, {"f32_fma_fraction", tps / r.f32FmaLimit},
          {"matmul_compute", matmulComputeName(matmulCompute())}, {"cpu", cpuIdentity().describe()},
          {"time_share", shares}};
}

std::vector<Case> benchCases(const ParsedArgs& args) {
  std::vector<Case> cases;
  const int64_t prompt = args.integer("prompt"), gen = args.integer("gen");
  if (prompt < 0 || gen < 0 || prompt + gen == 0) throwInvalidArgument("--prompt and --gen: one must be positive");
  for (int64_t b : args.integerList("pp-batch")) {
    if (b < 1) throwInvalidArgument("--pp-batch: batch sizes must be at least 1");
    if (prompt > 0) cases.push_back({"pp" + std::to_string(prompt), true, b, prompt});
  }
  for (int64_t b : args.integerList("batch")) {
    if (b < 1) throwInvalidArgument("--batch: batch sizes must be at least 1");
    if (gen > 0) cases.push_back({"tg" + std::to_string(gen), false, b, gen});
  }
  return cases;
}

// KV room for every sequence of the largest case; steps of up to ubatch prefill tokens or one token a sequence.
LocalEngineOptions engineOptions(const std::vector<Case>& cases, int threads, int64_t ubatch) {
  LocalEngineOptions options;
  options.threads = threads;
  options.maxStepTokens = ubatch;
  options.kvTokens = options.kvBlockSize;
  for (const Case& c : cases) {
    const int64_t blocks = (c.tokens + options.kvBlockSize - 1) / options.kvBlockSize;
    options.kvTokens = std::max(options.kvTokens, c.batch * blocks * options.kvBlockSize);
    if (!c.prefill) options.maxStepTokens = std::max(options.maxStepTokens, c.batch);
  }
  return options;
}

std::vector<BenchColumn> benchTable() {
  const auto percent = [](std::string header, int width, std::string key) {
    return BenchColumn{std::move(header), width, false, [key = std::move(key)](const BenchRecord& r) {
                         char text[32];
                         std::snprintf(text, sizeof text, "%.1f%%", 100 * r.at(key).get<double>());
                         return std::string(text);
                       }};
  };
  // "mean ± sd"
  const auto tokensPerSecond = [](const BenchRecord& r) {
    char text[64];
    std::snprintf(text, sizeof text, "%9.2f ± %6.2f", r.at("tokens_per_s").get<double>(),
                  r.at("tokens_per_s_sd").get<double>());
    return std::string(text);
  };
  return {textColumn("test", 7, "test", /*leftAligned=*/true),
          numberColumn("batch", 5, "batch", "%lld"),
          numberColumn("threads", 7, "threads", "%lld"),
          textColumn("dtype", 5, "dtype"),
          BenchColumn{"tokens/s", 18, false, tokensPerSecond},
          numberColumn("limit tok/s", 11, "limit_tokens_per_s", "%.2f"),
          percent("of limit", 8, "limit_fraction"),
          textColumn("bound", 9, "bound", /*leftAligned=*/true),
          percent("of f32 FMA", 10, "f32_fma_fraction")};
}

void printHardware(FILE* table, const HardwareLimits& limits) {
  std::fprintf(table,
               "hardware: %d threads, read bandwidth %.1f GB/s, peak f32 FMA %.0f GFLOP/s, peak bf16 dot %.0f "
               "GFLOP/s, peak vnni %.0f GOP/s (best of before and after the cases; a decode repetition is judged "
               "against the bandwidth probed just before and after it); the matmul computes BF16 weights with %s "
               "(%s: %s), INT8 weights with vpdpbusd\n",
               limits.threads, limits.readBandwidthBytesPerSecond / 1e9, limits.peakF32FlopsPerSecond / 1e9,
               limits.peakBf16DotFlopsPerSecond / 1e9, limits.peakVnniOpsPerSecond / 1e9,
               limits.matmulArithmetic.c_str(), cpuIdentity().describe().c_str(),
               computeForCpu(cpuIdentity()).reason.c_str());
}

// Flags of the other mode are refused rather than ignored.
void refuseOtherModesFlags(const ParsedArgs& args, bool throughCluster) {
  const std::vector<std::string> inProcessOnly = {"threads", "pp-batch"};
  const std::vector<std::string> clusterOnly = {"candidates", "local-threads", "allreduce-dtype"};
  for (const std::string& flag : throughCluster ? inProcessOnly : clusterOnly) {
    if (args.has(flag)) {
      throwInvalidArgument("--" + flag + (throughCluster ? " applies to the in-process bench, not through a cluster "
                                                            "(--tp, --pp, --cluster)"
                                                          : " applies only through a cluster (--tp, --pp, --cluster)"));
    }
  }
}

}  // namespace

int benchCommand(int argc, char** argv) {
  const auto parsed = parser().parse(argc, argv);
  if (!parsed) return 0;
  const ParsedArgs& args = *parsed;
  const bool throughCluster = args.has("tp") || args.has("pp") || args.has("cluster");
  refuseOtherModesFlags(args, throughCluster);
  if (throughCluster) return benchCluster(args);
  const int threads = int(args.integer("threads"));
  const int64_t ubatch = args.integer("ubatch"), reps = args.integer("reps");
  if (threads < 1 || ubatch < 1 || reps < 1) throwInvalidArgument("--threads, --ubatch and --reps must be positive");
  const std::vector<Case> cases = benchCases(args);
  FILE* table = args.has("json") ? stderr : stdout;

  const int64_t bandwidthGiB = args.integer("bandwidth-gib");
  if (bandwidthGiB < 1) throwInvalidArgument("--bandwidth-gib must be at least 1");
  const ReadBandwidthProbe probe(threads, size_t(bandwidthGiB) << 30);
  const HardwareLimits before = measureHardwareLimits(threads, probe);
  std::vector<CaseResult> results;
  std::vector<std::string> modelLines;
  ModelConfig config;
  const std::vector<std::string> dtypes = args.strList("dtype");  // "--dtype bf16,int8"
  if (dtypes.empty()) throwInvalidArgument("--dtype: expected bf16, int8 or auto, got ''");
  for (const std::string& dtype : dtypes) parseWeightDtype(dtype);  // a bad name fails before any work
  for (const std::string& dtype : dtypes) {  // one engine at a time: memory holds one model
    LocalEngineOptions options = engineOptions(cases, threads, ubatch);
    options.weightType = parseWeightDtype(dtype);
    options.kvType = parseKvDtype(args.str("kv-dtype"));
    const auto engine = LocalEngine::open(args.str("model"), options);
    config = engine->config();
    for (const Case& c : cases) {
      std::fprintf(stderr, "running %s at batch %lld, %s weights (%lld reps)...\n", c.test.c_str(),
                   (long long)c.batch, weightTypeName(engine->weightType()), (long long)reps);
      CaseResult& r = results.emplace_back(runCase(*engine, c, ubatch, reps, probe));
      r.weights = engine->weightType();
      r.kvDtype = kvTypeName(options.kvType);
      r.decodeBytesPerStep = decodeBytesPerStep(*engine, c.batch, c.tokens);
    }
    char line[256];
    std::snprintf(line, sizeof line, "model: %s, %lld layers, %s weights: %.2f GB packed, loaded in %.1f s",
                  args.str("model").c_str(), (long long)config.numLayers, weightTypeName(engine->weightType()),
                  double(engine->weights().bytes) / 1e9, engine->loadSeconds());
    modelLines.push_back(line);
  }
  const HardwareLimits limits = bestOf(before, measureHardwareLimits(threads, probe));

  printHardware(table, limits);
  for (const std::string& line : modelLines) std::fprintf(table, "%s\n", line.c_str());
  std::fprintf(table, "\n");
  std::vector<BenchRecord> records;
  for (CaseResult& r : results) {
    applyLimits(r, config, limits);
    records.push_back(caseRecord(r, limits));
  }
  printBenchTable(table, benchTable(), records);
  if (args.has("json")) {
    for (const BenchRecord& record : records) printBenchJson(record);
  }
  std::fprintf(table, "\nwhere the time goes (share of wall time):\n");
  for (const CaseResult& r : results) {
    std::fprintf(table, "  %s b%lld %s: %s\n", r.spec.test.c_str(), (long long)r.spec.batch,
                 weightTypeName(r.weights), profileText(r).c_str());
  }
  return 0;
}

}  // namespace phx::cli
