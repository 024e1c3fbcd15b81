// phalanx serve --model DIR [--host H] [--port N] [--threads N] [--kv-tokens N] [--api-key-file F]: the whole model
// in this process behind the OpenAI-compatible HTTP API (like llama-server). Ctrl-C stops it cleanly.
#include <cstdio>
#include <thread>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/server_flags.h"
#include "common/error.h"
#include "coordinator/server.h"
#include "coordinator/server_metrics.h"
#include "model/tokenizer.h"
#include "worker/local_engine.h"

namespace phx::cli {
namespace {

ArgParser parser() {
  ArgParser p("phalanx serve --model DIR [options]",
              "Serves the model from this process over an OpenAI-compatible HTTP API: POST /v1/completions and "
              "/v1/chat/completions (streaming with \"stream\": true), GET /v1/models, /health, /v1/phalanx/stats. "
              "Requests are batched continuously. Ctrl-C stops it.");
  p.option("model", "DIR", "checkpoint directory (Hugging Face layout)")
      .option("threads", "N", "compute threads", std::to_string(std::thread::hardware_concurrency()))
      .option("kv-tokens", "N", "KV cache capacity in tokens, shared by all running requests", "16384")
      .option("dtype", "T", "matrix weights: bf16, int8 (quantized while loading) or auto (the checkpoint's own)",
              "auto")
      .option("kv-dtype", "T", "KV cache: bf16, int8 (per token and head scales) or f32", "bf16");
  addServerFlags(p, 8000);
  return p;
}

}  // namespace

int serveCommand(int argc, char** argv) {
  const auto parsed = parser().parse(argc, argv);
  if (!parsed) return 0;
  const ParsedArgs& args = *parsed;
  const std::filesystem::path modelDir = args.str("model");
  const Tokenizer tokenizer = Tokenizer::load(modelDir);
  const ModelConfig config = loadModelConfig(modelDir / "config.json");
  ServerOptions options = serverOptionsFrom(args, modelDir, config);

  LocalEngineOptions engineOptions;
  engineOptions.kvTokens = args.integer("kv-tokens");
  engineOptions.maxStepTokens = options.maxBatchTokens;
  engineOptions.threads = int(args.integer("threads"));
  engineOptions.weightType = parseWeightDtype(args.str("dtype"));
  engineOptions.kvType = parseKvDtype(args.str("kv-dtype"));
  if (engineOptions.kvTokens < 1) throwInvalidArgument("--kv-tokens must be at least 1");
  if (engineOptions.threads < 1) throwInvalidArgument("--threads must be at least 1");
  const auto engine = LocalEngine::open(modelDir, engineOptions);

  CoordinatorMetrics metrics;
  attachMetrics(options, metrics);
  options.onListening = [&](int port) {
    std::fprintf(stderr, "phalanx serve: %s (%lld KV tokens, loaded in %.1f s) listening on http://%s:%d\n",
                 modelDir.c_str(), (long long)engine->cache().shape().tokenCapacity(), engine->loadSeconds(),
                 options.host.c_str(), port);
    std::fflush(stderr);
  };
  serveUntilSignalled([&](std::stop_token stop) { runServer(engine->runner(), tokenizer, config, options, stop); });
  std::fprintf(stderr, "phalanx serve: stopped\n");
  return 0;
}

}  // namespace phx::cli
