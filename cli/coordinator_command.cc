// phalanx coordinator --model DIR --workers H:P,... --tp T [--pp P] [--port N]: the cluster's front door. Computes
// the shard plan, has every worker load its shard over the control plane, then serves the OpenAI-compatible HTTP
// API on the client port, running each model step across the workers. `phalanx up` starts one for a local cluster.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/server_flags.h"
#include "common/error.h"
#include "coordinator/cluster_executor.h"
#include "coordinator/server_metrics.h"
#include "model/tokenizer.h"
#include "partition/shard_plan.h"
#include "rpc/cluster_auth.h"
#include "worker/local_engine.h"

namespace phx::cli {
namespace {

ArgParser parser() {
  ArgParser p("phalanx coordinator --model DIR --workers HOST:PORT,... --tp T [--pp P] [options]",
              "Connects to running `phalanx worker` processes, sends each its shard of the plan, and serves the "
              "OpenAI-compatible HTTP API on the client port (generate --cluster connects there too). When a worker "
              "dies or hangs, the requests it was running pause and are replayed once it is back at the same address "
              "(loaded again if it restarted); they fail only past --recovery-timeout. A worker that already holds "
              "the same shard (a restarted coordinator) is re-attached without reading the checkpoint again.");
  p.option("model", "DIR", "checkpoint directory, as the workers see it (Hugging Face layout)")
      .option("workers", "LIST", "comma-separated HOST:PORT of every worker, stage by stage, tp rank by tp rank")
      .option("tp", "T", "tensor-parallel ranks per pipeline stage", "1")
      .option("pp", "P", "pipeline stages", "1")
      .option("threads", "N", "compute threads per worker", "1")
      .option("kv-tokens", "N", "KV cache capacity in tokens, shared by all running requests", "16384")
      .option("kv-block-size", "N", "tokens per KV block", "16")
      .option("dtype", "T",
              "matrix weights on every worker: bf16, int8 (each worker quantizes its shard while loading) or auto "
              "(each worker's own --dtype, by default the checkpoint's)", "auto")
      .option("kv-dtype", "T", "KV cache: bf16, int8 (per token and head scales) or f32", "bf16")
      .option("compute", "C",
              "how every worker multiplies BF16 weights: bf16dot, f32fma or auto (the workers' CPU table choice when "
              "they agree, else f32fma)", "auto")
      .option("allreduce-dtype", "T",
              "what tensor-parallel all-reduces send: f32, or bf16 (half the bytes; sums in f32; UCX workers only)",
              "f32")
      .option("stage-weights", "W,W,..",
              "layers split over the pipeline stages in proportion (default: evenly); e.g. 3,1 gives the last stage, "
              "which also holds lm_head, fewer layers")
      .option("micro-batches", "N",
              "pipeline micro-batches: steps in flight at once, each over its own share of the requests, so every "
              "stage works at once (0: one per stage; 1: one batch walks the stages)", "0")
      .option("recovery-timeout", "S", "seconds requests wait for a faulted cluster before they fail", "60")
      .option("connect-timeout", "S",
              "seconds to keep trying to reach each worker at start-up (refused, or its name not resolving yet)", "10")
      .option("cluster-secret-file", "FILE", "the workers' cluster secret: authenticate to each (both ways)")
      .option("tls-cert", "FILE", "PEM client certificate for mutual TLS to the workers (with --tls-key, --tls-ca)")
      .option("tls-key", "FILE", "PEM private key of --tls-cert")
      .option("tls-ca", "FILE", "PEM CA that must have signed every worker's certificate (naming its --workers host)");
  addServerFlags(p, 8000);
  return p;
}

std::chrono::milliseconds positiveSeconds(const ParsedArgs& args, const std::string& flag) {
  const double seconds = args.number(flag);
  if (!(seconds > 0)) throwInvalidArgument("--" + flag + " must be a positive number of seconds");
  return std::chrono::milliseconds(int64_t(seconds * 1000));
}

// The cluster the flags describe: the plan, the workers and how each loads and runs its shard.
ClusterExecutorOptions clusterOptions(const ParsedArgs& args, const ModelConfig& config, int64_t maxStepTokens) {
  ClusterSpec spec;
  spec.tp = int(args.integer("tp"));
  spec.pp = int(args.integer("pp"));
  spec.kvTokens = args.integer("kv-tokens");
  const std::optional<WeightType> weightType = parseWeightDtype(args.str("dtype"));
  spec.matrices = weightType.value_or(WeightType::kBf16);
  if (args.has("stage-weights")) spec.stageMemoryWeights = args.numberList("stage-weights");
  const int64_t blockSize = args.integer("kv-block-size");
  if (spec.kvTokens < 1) throwInvalidArgument("--kv-tokens must be at least 1");
  if (blockSize < 1) throwInvalidArgument("--kv-block-size must be at least 1");

  ClusterExecutorOptions options;
  options.plan = makeShardPlan(config, spec);
  options.endpoints = args.strList("workers");
  if (int(options.endpoints.size()) != options.plan.workers()) {
    throwInvalidArgument("--workers lists " + std::to_string(options.endpoints.size()) + " endpoint(s); tp " +
                         std::to_string(spec.tp) + " x pp " + std::to_string(spec.pp) + " needs " +
                         std::to_string(options.plan.workers()));
  }
  options.checkpointDir = std::filesystem::absolute(args.str("model"));
  options.kvBlockSize = blockSize;
  options.kvBlocks = (spec.kvTokens + blockSize - 1) / blockSize;
  options.weightType = weightType;
  options.kvType = parseKvDtype(args.str("kv-dtype"));
  options.threadsPerWorker = int(args.integer("threads"));
  if (options.threadsPerWorker < 1) throwInvalidArgument("--threads must be at least 1");
  options.maxStepTokens = maxStepTokens;
  if (auto file = args.optionalStr("cluster-secret-file")) options.clusterSecret = readClusterSecret(*file);
  options.tls = controlTlsFiles(args.optionalStr("tls-cert"), args.optionalStr("tls-key"), args.optionalStr("tls-ca"));
  if (const std::string compute = args.str("compute"); compute != "auto") {
    options.compute = parseMatmulCompute(compute);
    if (!options.compute) throwInvalidArgument("--compute must be bf16dot, f32fma or auto, got '" + compute + "'");
  }
  options.allReducePayload = parseAllReducePayload(args.str("allreduce-dtype"));
  options.connectTimeout = positiveSeconds(args, "connect-timeout");
  return options;
}

void printLoadReports(const ClusterExecutor& cluster) {
  for (const auto& report : cluster.loadReports()) {
    std::fprintf(stderr,
                 "phalanx coordinator: %s (pid %lld, %s) %s %.2f GB (%s, %s) in %.1f s, read %.2f GB, RSS %.2f GB "
                 "(peak %.2f GB)\n",
                 report.endpoint.c_str(), (long long)report.pid, report.cpu.c_str(),
                 report.reused ? "re-attached to" : "loaded", report.weightBytes / 1e9,
                 weightTypeName(report.weightType), matmulComputeName(report.compute), report.loadSeconds,
                 report.bytesRead / 1e9, report.rssBytes / 1e9, report.peakRssBytes / 1e9);
  }
}

}  // namespace

int coordinatorCommand(int argc, char** argv) {
  const auto parsed = parser().parse(argc, argv);
  if (!parsed) return 0;
  const ParsedArgs& args = *parsed;
  const std::filesystem::path modelDir = args.str("model");
  const ModelConfig config = loadModelConfig(modelDir / "config.json");
  const Tokenizer tokenizer = Tokenizer::load(modelDir);
  ServerOptions serverOptions = serverOptionsFrom(args, modelDir, config);
  serverOptions.recoveryTimeout = positiveSeconds(args, "recovery-timeout");
  serverOptions.microBatches = int(args.integer("micro-batches"));
  if (serverOptions.microBatches < 0) throwInvalidArgument("--micro-batches must be 0 (one per stage) or more");
  const ClusterExecutorOptions options = clusterOptions(args, config, serverOptions.maxBatchTokens);

  std::fprintf(stderr, "phalanx coordinator: %d worker(s), tp %d x pp %d; loading %s\n", options.plan.workers(),
               options.plan.tp, options.plan.pp, options.checkpointDir.c_str());
  const auto cluster = ClusterExecutor::start(options);
  printLoadReports(*cluster);

  serverOptions.ready = [&cluster] { return cluster->ready(); };
  CoordinatorMetrics metrics;
  attachMetrics(serverOptions, metrics, [&] {
    const auto& ranks = cluster->lastStepTimings().ranks;
    for (size_t w = 0; w < ranks.size(); ++w) {
      metrics.onRankStep(int(w), {.compute = ranks[w].computeSeconds, .communication = ranks[w].commSeconds,
                                  .wait = ranks[w].waitSeconds});
    }
  });
  serverOptions.onListening = [&](int port) {
    std::fprintf(stderr, "phalanx coordinator: listening on http://%s:%d\n", serverOptions.host.c_str(), port);
    std::fflush(stderr);
  };
  serveUntilSignalled([&](std::stop_token stop) { runServer(*cluster, tokenizer, config, serverOptions, stop); });
  std::fprintf(stderr, "phalanx coordinator: stopped\n");
  return 0;
}

}  // namespace phx::cli
