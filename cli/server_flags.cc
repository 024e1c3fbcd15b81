#include "cli/server_flags.h"

#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "cli/generation_output.h"
#include "common/error.h"

namespace phx::cli {
namespace {

std::atomic<bool> stopSignalled{false};

void onStopSignal(int) { stopSignalled.store(true); }

std::string readApiKey(const std::string& path) {
  std::ifstream file(path);
  if (!file) throwIoError("--api-key-file: cannot read " + path);
  std::stringstream text;
  text << file.rdbuf();
  std::string key = text.str();
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ')) key.pop_back();
  if (key.empty()) throwInvalidArgument("--api-key-file: " + path + " is empty");
  return key;
}

}  // namespace

void addServerFlags(ArgParser& parser, int defaultPort) {
  parser.option("host", "H", "address to listen on", "127.0.0.1")
      .option("port", "N", "port to listen on (0: any free port, printed on stderr)", std::to_string(defaultPort))
      .option("api-key-file", "F", "require 'Authorization: Bearer KEY' with the key in this file")
      .option("model-name", "NAME", "the model id clients name (GET /v1/models)", "phi-4")
      .option("max-batch-tokens", "N", "tokens per model step: decode tokens plus prompt chunks", "512")
      .option("max-prefill-tokens", "N", "of those, prompt tokens at most (0: all of them)", "0")
      .option("max-running", "N", "requests in the running batch", "64")
      .option("max-waiting", "N", "queued requests before 429", "256")
      .option("max-connections", "N", "open HTTP connections; one more is answered 503 and closed", "512")
      .option("body-timeout", "S", "seconds the whole request body may take to arrive (else 408)", "30")
      .option("drain-timeout", "S", "on SIGTERM/SIGINT: seconds running requests get to finish (new ones: 503)",
              "30")
      .flag("no-prefix-cache", "do not reuse the KV blocks of earlier prompts");
}

ServerOptions serverOptionsFrom(const ParsedArgs& args, const std::filesystem::path& modelDir,
                                const ModelConfig& config) {
  ServerOptions options;
  options.host = args.str("host");
  options.port = int(args.integer("port"));
  options.modelName = args.str("model-name");
  if (args.has("api-key-file")) options.apiKey = readApiKey(args.str("api-key-file"));
  options.stopTokenIds = modelStopTokenIds(modelDir, config);
  options.maxBatchTokens = args.integer("max-batch-tokens");
  options.maxPrefillTokens = args.integer("max-prefill-tokens");
  options.maxRunning = args.integer("max-running");
  options.maxWaiting = args.integer("max-waiting");
  options.prefixCaching = !args.has("no-prefix-cache");
  options.maxConnections = int(args.integer("max-connections"));
  if (options.maxConnections < 1) throwInvalidArgument("--max-connections must be at least 1");
  const double bodySeconds = args.number("body-timeout");
  if (!(bodySeconds > 0)) throwInvalidArgument("--body-timeout must be a positive number of seconds");
  options.bodyTimeout = std::chrono::milliseconds(int64_t(bodySeconds * 1000));
  const double drainSeconds = args.number("drain-timeout");
  if (!(drainSeconds >= 0)) throwInvalidArgument("--drain-timeout must be a non-negative number of seconds");
  options.drainTimeout = std::chrono::milliseconds(int64_t(drainSeconds * 1000));
  if (options.port < 0 || options.port > 65535) throwInvalidArgument("--port must lie in [0, 65535]");
  if (options.maxBatchTokens < 1) throwInvalidArgument("--max-batch-tokens must be at least 1");
  if (options.maxPrefillTokens < 0) throwInvalidArgument("--max-prefill-tokens must be 0 (no limit) or more");
  if (options.maxRunning < 1) throwInvalidArgument("--max-running must be at least 1");
  if (options.maxWaiting < 0) throwInvalidArgument("--max-waiting must not be negative");
  return options;
}

void serveUntilSignalled(const std::function<void(std::stop_token)>& serve) {
  struct sigaction action = {};
  action.sa_handler = onStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  // The handler only sets a flag (all it may do); this thread turns it into a stop request.
  std::stop_source stop;
  std::jthread watcher([&stop](std::stop_token done) {
    while (!done.stop_requested() && !stopSignalled.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    stop.request_stop();
  });
  serve(stop.get_token());
}

}  // namespace phx::cli
