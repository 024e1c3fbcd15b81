// One completion request on the HTTP thread, from submission to the last byte: it feeds the scheduler's events for
// its n choices into either one JSON response or a stream of server-sent events (`data: {...}` chunks, then
// `data: [DONE]`). Dropping it (the client went away, the server stops) cancels its sequences, which frees their
// KV blocks at the next step.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <kj/async.h>
#include <kj/compat/http.h>

#include "coordinator/event_channel.h"
#include "coordinator/openai_protocol.h"
#include "coordinator/parse_thread.h"
#include "coordinator/scheduler.h"

namespace phx {

struct ServerOptions;

// What every request handler shares.
struct ServerContext {
  Scheduler& scheduler;
  const Tokenizer& tokenizer;
  const ServerOptions& options;
  ApiLimits limits;
  const kj::HttpHeaderTable& headerTable;
  kj::HttpHeaderId authorization;
  kj::HttpHeaderId retryAfter;
  kj::HttpHeaderId cacheControl;
  std::atomic<uint64_t> requests{0};
  std::atomic<bool> draining{false};  // stopping: /health 503, new completions 503, running ones finish
  ParseThread* parser = nullptr;      // parses and tokenizes request bodies off the event loop
};

kj::Promise<void> sendJson(kj::HttpService::Response& response, const ServerContext& context, int status,
                           const std::string& body, int retryAfterSeconds = 0);
kj::Promise<void> sendError(kj::HttpService::Response& response, const ServerContext& context, const ApiError& error);

class CompletionExchange {
 public:
  // Submits the request's sequences; throws ApiError (400 for a prompt that can never run, 429 when the queue is
  // full).
  CompletionExchange(ServerContext& context, ApiRequest request, kj::HttpService::Response& response);
  ~CompletionExchange();

  // Resolves when the response is complete.
  kj::Promise<void> run();

 private:
  struct Choice {
    ChoiceDelta pending;  // what has not been sent yet (a stream) or everything (a whole response)
    int64_t generated = 0;
    bool done = false;
  };
  kj::Promise<void> pump();
  // Applies the events; returns the SSE text to send now (streams).
  std::string apply(std::vector<ChoiceEvent> events);
  bool allDone() const;

  ServerContext& context_;
  ApiRequest request_;
  kj::HttpService::Response& response_;
  ResponseIdentity identity_;
  std::shared_ptr<EventChannel> channel_;
  std::vector<uint64_t> ids_;
  std::vector<Choice> choices_;
  Usage usage_;
  std::optional<ApiError> failure_;  // set when a sequence failed
  kj::Own<kj::AsyncOutputStream> stream_;
  std::string writing_;  // the SSE text being written (must outlive the write)
};

}  // namespace phx
