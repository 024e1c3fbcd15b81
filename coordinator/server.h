// The OpenAI-compatible HTTP API: POST /v1/completions and /v1/chat/completions (streamed as server-sent events
// when asked), GET /v1/models, GET /health, GET /v1/phalanx/stats (the scheduler's statistics as JSON) and, when
// the metrics exporter provides it, GET /metrics. Cap'n Proto's KJ HTTP serves it on one event-loop thread (the same
// kind of loop the control plane's RPC runs on; Debian ships it; request and response bodies stream); model steps
// run on one scheduler thread (coordinator/scheduler.h); events cross between them through EventChannel.
#pragma once

#include <cstdint>
#include <chrono>
#include <functional>
#include <stop_token>
#include <string>
#include <vector>

#include "coordinator/openai_protocol.h"
#include "coordinator/scheduler.h"
#include "model/config.h"
#include "model/tokenizer.h"
#include "rpc/step.h"

namespace phx {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                   // 0: any free port (see onListening)
  std::string modelName = "phi-4";   // GET /v1/models and the `model` field
  std::string apiKey;                // empty: no auth
  std::vector<int32_t> stopTokenIds; // the model's end-of-sequence ids; empty: config.eosTokenId
  int64_t maxWaiting = 256;          // queued sequences; more get 429 with Retry-After
  int64_t maxBatchTokens = 512;      // tokens per model step (at most what the executor takes)
  int64_t maxPrefillTokens = 0;      // of those, prompt tokens (0: all of them)
  int64_t maxRunning = 64;           // sequences in the running batch
  int microBatches = 0;              // pipeline micro-batches (SchedulerOptions::microBatches)
  bool prefixCaching = true;
  int32_t candidates = kDefaultCandidates;  // logit candidates per row (0: dense logits)
  std::chrono::milliseconds recoveryTimeout{60000};  // requests wait this long for a faulted cluster to return
  std::chrono::milliseconds drainTimeout{30000};     // on stop: running requests get this long to finish
  int64_t maxRequestBytes = 8 << 20;
  std::chrono::milliseconds bodyTimeout{30000};  // the whole request body must arrive within this (else 408)
  int maxConnections = 512;                      // open HTTP connections; one more gets 503 and is closed
  std::function<bool()> ready;       // gates GET /health (unset: always ready); completions queue regardless
  SchedulerHooks hooks;              // for the metrics exporter
  // GET /metrics body (Prometheus text format) given the scheduler's state at scrape time; unset: 404.
  std::function<std::string(const SchedulerStats&)> metrics;
  std::function<void(const ApiError&)> onError;  // every error response, for the errors_total metric
  std::function<void(int port)> onListening;  // called once the socket listens
};

// Serves the HTTP API until stop is requested, then drains: /health and new completions answer 503 (Retry-After)
// while the requests already accepted finish, up to drainTimeout; then returns. Model steps run on `executor` from
// one scheduler thread. Throws phx::Error when the address cannot be bound.
void runServer(StepExecutor& executor, const Tokenizer& tokenizer, const ModelConfig& config,
               const ServerOptions& options, std::stop_token stop);

}  // namespace phx
