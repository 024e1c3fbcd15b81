#include "coordinator/server.h"

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/compat/http.h>

#include "common/error.h"
#include "coordinator/completion_exchange.h"
#include "coordinator/http_listener.h"

namespace phx {
namespace {

using nlohmann::json;

// Resolves when the client has closed its end of the connection. A client sends nothing more while it waits for
// its response, so a peek that finds end-of-file means it hung up; KJ's whenWriteDisconnected() only notices
// once a write fails, which a whole (non-streamed) response never attempts before it is done.
kj::Promise<void> whenHungUp(kj::Timer& timer, kj::AsyncIoStream& connection) {
  KJ_IF_MAYBE(fd, connection.getFd()) {
    return timer.afterDelay(200 * kj::MILLISECONDS).then([&timer, &connection, fd = *fd]() -> kj::Promise<void> {
      char byte;
      const ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return kj::READY_NOW;
      return whenHungUp(timer, connection);
    });
  }
  return kj::NEVER_DONE;
}

// A request body as read: whole, over the size limit (or broken off), or not complete within the body timeout.
struct BodyRead {
  enum Outcome { kRead, kTooLarge, kTimedOut } outcome;
  kj::String text;
};

// Routes requests; each completion becomes a CompletionExchange kept alive by its promise. One per connection, so
// that a completion can watch its client's socket: a client that hangs up is noticed even while nothing is being
// written to it (a whole, non-streamed response), and its sequences are cancelled.
class ApiService final : public kj::HttpService {
 public:
  ApiService(ServerContext& context, kj::Timer& timer, kj::AsyncIoStream& connection)
      : context_(context), timer_(timer), connection_(connection) {}

  kj::Promise<void> request(kj::HttpMethod method, kj::StringPtr url, const kj::HttpHeaders& headers,
                            kj::AsyncInputStream& body, Response& response) override {
    std::string path(url.cStr());
    if (const size_t query = path.find('?'); query != std::string::npos) path.resize(query);
    try {
      if (path == "/health") {
        expect(method, kj::HttpMethod::GET);
        if (context_.draining) return sendJson(response, context_, 503, R"({"status":"draining"})", 5);
        const bool ready = !context_.options.ready || context_.options.ready();
        if (!ready) {
          return sendJson(response, context_, 503, R"({"status":"loading"})", 1);
        }
        return sendJson(response, context_, 200, R"({"status":"ok"})");
      }
      authorize(headers);
      if (path == "/v1/completions" || path == "/v1/chat/completions") {
        expect(method, kj::HttpMethod::POST);
        return receiveCompletion(
            path == "/v1/completions" ? ApiEndpoint::kCompletions : ApiEndpoint::kChatCompletions, body, response);
      }
      if (path == "/v1/models") {
        expect(method, kj::HttpMethod::GET);
        const json models{{"object", "list"},
                          {"data", {{{"id", context_.options.modelName}, {"object", "model"}, {"created", 0},
                                     {"owned_by", "phalanx"}, {"max_model_len", context_.limits.maxContext}}}}};
        return sendJson(response, context_, 200, dumpJson(models));
      }
      if (path == "/v1/phalanx/stats") {
        expect(method, kj::HttpMethod::GET);
        return sendJson(response, context_, 200, dumpJson(statsJson(context_.scheduler.stats())));
      }
      if (path == "/metrics" && context_.options.metrics) {
        expect(method, kj::HttpMethod::GET);
        return sendMetrics(response);
      }
      throw ApiError{.status = 404, .message = "no route " + path, .type = "not_found_error"};
    } catch (const ApiError& error) {
      return sendError(response, context_, error);
    }
  }

 private:
  // A completion's body, read whole within the size and time limits, then answered.
  kj::Promise<void> receiveCompletion(ApiEndpoint endpoint, kj::AsyncInputStream& body, Response& response) {
    if (context_.draining) {
      throw ApiError{.status = 503, .message = "the server is shutting down", .type = "server_unavailable_error",
                     .code = "draining", .retryAfterSeconds = 5};
    }
    // Not gated on ready(): while a cluster recovers, new requests queue behind the replayed ones and run when it
    // is back (or fail after the recovery timeout), as the requests in flight do.
    const uint64_t limit = uint64_t(context_.options.maxRequestBytes);
    const ApiError tooLarge{.status = 413, .message = "the request body exceeds " + std::to_string(limit) + " bytes"};
    KJ_IF_MAYBE(length, body.tryGetLength()) {
      if (*length > limit) return sendError(response, context_, tooLarge);
    }
    // The whole body within the timeout, not only the headers: a client trickling bytes must not hold a connection
    // (and its buffer) for ever.
    const auto seconds = context_.options.bodyTimeout.count() / 1000.0;
    const ApiError slow{.status = 408,
                        .message = "the request body did not arrive within " + std::to_string(seconds).substr(0, 4) +
                                   " s"};
    auto reading = body.readAllText(limit).then(
        [](kj::String text) { return BodyRead{BodyRead::kRead, kj::mv(text)}; },
        [](kj::Exception&&) { return BodyRead{BodyRead::kTooLarge, nullptr}; });
    auto timedOut = timer_.afterDelay(context_.options.bodyTimeout.count() * kj::MILLISECONDS).then([] {
      return BodyRead{BodyRead::kTimedOut, nullptr};
    });
    return reading.exclusiveJoin(kj::mv(timedOut))
        .then([this, endpoint, tooLarge, slow, &response](BodyRead read) -> kj::Promise<void> {
          if (read.outcome == BodyRead::kTimedOut) return sendError(response, context_, slow);
          if (read.outcome == BodyRead::kTooLarge) return sendError(response, context_, tooLarge);
          return complete(endpoint, read.text, response);
        });
  }

  kj::Promise<void> sendMetrics(Response& response) {
    kj::HttpHeaders out(context_.headerTable);
    out.set(kj::HttpHeaderId::CONTENT_TYPE, "text/plain; version=0.0.4");
    auto text = kj::str(context_.options.metrics(context_.scheduler.stats()).c_str());
    auto stream = response.send(200, "OK", out, uint64_t(text.size()));
    auto written = stream->write(text.begin(), text.size());
    return written.attach(kj::mv(stream), kj::mv(text));
  }

  static void expect(kj::HttpMethod method, kj::HttpMethod wanted) {
    if (method != wanted) {
      throw ApiError{.status = 405, .message = std::string("this route takes ") + kj::str(wanted).cStr() +
                                                   ", not " + kj::str(method).cStr()};
    }
  }

  void authorize(const kj::HttpHeaders& headers) const {
    if (context_.options.apiKey.empty()) return;
    KJ_IF_MAYBE(value, headers.get(context_.authorization)) {
      if (std::string(value->cStr()) == "Bearer " + context_.options.apiKey) return;
    }
    throw ApiError{.status = 401, .message = "a valid API key is required (Authorization: Bearer KEY)",
                   .type = "authentication_error", .code = "invalid_api_key"};
  }

  kj::Promise<void> complete(ApiEndpoint endpoint, const kj::String& text, Response& response) {
    return context_.parser->parse(std::string(text.begin(), text.size()), endpoint)
        .then([this, &response](ParsedRequest parsed) -> kj::Promise<void> {
          if (parsed.error) return sendError(response, context_, *parsed.error);
          return start(std::move(*parsed.request), response);
        });
  }

  kj::Promise<void> start(ApiRequest request, Response& response) {
    try {
      auto exchange = kj::heap<CompletionExchange>(context_, std::move(request), response);
      auto hungUp = whenHungUp(timer_, connection_).exclusiveJoin(connection_.whenWriteDisconnected()).then(
          []() { kj::throwFatalException(KJ_EXCEPTION(DISCONNECTED, "the client hung up")); });
      // A client that goes away is routine: its sequences are cancelled when the exchange is dropped, and KJ
      // closes the connection without a response on DISCONNECTED.
      return exchange->run().exclusiveJoin(kj::mv(hungUp)).attach(kj::mv(exchange));
    } catch (const ApiError& error) {
      return sendError(response, context_, error);
    } catch (const Error& error) {
      return sendError(response, context_, {.status = 400, .message = error.what()});
    }
  }

  static json statsJson(const SchedulerStats& s) {
    return {{"running", s.running}, {"waiting", s.waiting}, {"kv_block_size", s.kvBlockSize},
            {"kv_blocks_total", s.kvBlocksTotal}, {"kv_blocks_used", s.kvBlocksUsed},
            {"kv_blocks_active", s.kvBlocksActive}, {"kv_blocks_cached", s.kvBlocksCached},
            {"prefix_query_tokens", s.prefixQueryTokens}, {"prefix_hit_tokens", s.prefixHitTokens},
            {"steps", s.steps}, {"micro_batches", s.microBatches}, {"last_step_sequences", s.lastStepSequences}, {"last_step_tokens", s.lastStepTokens},
            {"preemptions", s.preemptions}, {"sequences_finished", s.sequencesFinished},
            {"sequences_cancelled", s.sequencesCancelled}, {"sequences_failed", s.sequencesFailed},
            {"prompt_tokens", s.promptTokens}, {"generated_tokens", s.generatedTokens}};
  }

  ServerContext& context_;
  kj::Timer& timer_;
  kj::AsyncIoStream& connection_;
};

// A client that hangs up mid-response is routine, not an error to log: the connection just closes.
class QuietDisconnects final : public kj::HttpServerErrorHandler {
 public:
  kj::Promise<void> handleApplicationError(kj::Exception exception,
                                           kj::Maybe<kj::HttpService::Response&> response) override {
    if (exception.getType() == kj::Exception::Type::DISCONNECTED) return kj::READY_NOW;
    return kj::HttpServerErrorHandler::handleApplicationError(kj::mv(exception), response);
  }
};

// Resolves once `stop` is requested (polled: a signal handler may be what requests it).
kj::Promise<void> whenStopped(kj::Timer& timer, std::stop_token stop) {
  if (stop.stop_requested()) return kj::READY_NOW;
  return timer.afterDelay(50 * kj::MILLISECONDS).then([&timer, stop]() { return whenStopped(timer, stop); });
}

// Resolves once nothing is queued or running (the last responses written), or at the deadline.
kj::Promise<void> whenDrained(kj::Timer& timer, const Scheduler& scheduler, kj::TimePoint deadline) {
  const SchedulerStats stats = scheduler.stats();
  if ((stats.running == 0 && stats.waiting == 0) || timer.now() >= deadline) {
    return timer.afterDelay(100 * kj::MILLISECONDS);  // the final events reach their clients
  }
  return timer.afterDelay(50 * kj::MILLISECONDS).then([&timer, &scheduler, deadline]() {
    return whenDrained(timer, scheduler, deadline);
  });
}

}  // namespace

void runServer(StepExecutor& executor, const Tokenizer& tokenizer, const ModelConfig& config,
               const ServerOptions& options, std::stop_token stop) {
  SchedulerOptions schedulerOptions;
  schedulerOptions.maxBatchTokens = options.maxBatchTokens;
  schedulerOptions.maxPrefillTokens = options.maxPrefillTokens;
  schedulerOptions.microBatches = options.microBatches;
  schedulerOptions.maxRunning = options.maxRunning;
  schedulerOptions.maxWaiting = options.maxWaiting;
  schedulerOptions.maxContext = config.maxPositionEmbeddings;
  schedulerOptions.prefixCaching = options.prefixCaching;
  schedulerOptions.candidates = options.candidates;
  schedulerOptions.recoveryTimeout = options.recoveryTimeout;
  Scheduler scheduler(executor, tokenizer, schedulerOptions, options.hooks);

  auto io = kj::setupAsyncIo();
  kj::HttpHeaderTable::Builder builder;
  const kj::HttpHeaderId authorization = builder.add("Authorization");
  const kj::HttpHeaderId retryAfter = builder.add("Retry-After");
  const kj::HttpHeaderId cacheControl = builder.add("Cache-Control");
  auto headerTable = builder.build();

  ApiLimits limits{.modelName = options.modelName, .maxContext = config.maxPositionEmbeddings,
                   .stopTokenIds = options.stopTokenIds};
  if (limits.stopTokenIds.empty()) limits.stopTokenIds = {int32_t(config.eosTokenId)};
  ServerContext context{scheduler, tokenizer, options, limits, *headerTable, authorization, retryAfter, cacheControl};
  ParseThread parser(tokenizer, context.limits);
  context.parser = &parser;

  std::jthread steps([&scheduler](std::stop_token token) { scheduler.run(token); });
  {
    kj::HttpServerSettings settings;
    settings.headerTimeout = 30 * kj::SECONDS;
    // An idle keep-alive connection stays open well past the clients' own expiry (undici 4 s, httpx 5 s) and a
    // load balancer's (60 s), as nginx's 75 s does: were the server to close first (kj's default is 5 s), a
    // client could send its next request on a connection at the moment it closes and get a connection error.
    settings.pipelineTimeout = 75 * kj::SECONDS;
    QuietDisconnects quietDisconnects;
    settings.errorHandler = quietDisconnects;
    kj::HttpServer server(
        io.provider->getTimer(), *headerTable,
        [&context, &io](kj::AsyncIoStream& connection) -> kj::Own<kj::HttpService> {
          return kj::heap<ApiService>(context, io.provider->getTimer(), connection);
        },
        settings);
    kj::Own<kj::ConnectionReceiver> listener;
    try {
      auto address =
          io.provider->getNetwork().parseAddress(options.host.c_str(), uint(options.port)).wait(io.waitScope);
      listener = address->listen();
    } catch (const kj::Exception& error) {
      throw Error(ErrorKind::kIo, "serve: cannot listen on " + options.host + ":" + std::to_string(options.port) +
                                      ": " + error.getDescription().cStr());
    }
    if (options.onListening) options.onListening(int(listener->getPort()));
    HttpListener accepting(server, *listener, io.provider->getTimer(), options.maxConnections);
    auto listening = accepting.run().eagerlyEvaluate(nullptr);
    whenStopped(io.provider->getTimer(), stop).wait(io.waitScope);
    // Drain: refuse new work, let what runs finish (up to the drain timeout), then close.
    context.draining = true;
    const SchedulerStats left = scheduler.stats();
    std::fprintf(stderr, "serve: draining: %lld running, %lld waiting (up to %.0f s)\n", (long long)left.running,
                 (long long)left.waiting, options.drainTimeout.count() / 1000.0);
    auto& timer = io.provider->getTimer();
    whenDrained(timer, scheduler, timer.now() + options.drainTimeout.count() * kj::MILLISECONDS).wait(io.waitScope);
  }  // open exchanges are dropped here: their sequences are cancelled
  steps.request_stop();
  steps.join();
}

}  // namespace phx
