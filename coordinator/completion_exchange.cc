#include "coordinator/completion_exchange.h"

#include <chrono>

#include "common/error.h"
#include "coordinator/server.h"

namespace phx {
namespace {

const char* statusText(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

std::string sse(const nlohmann::json& chunk) { return "data: " + dumpJson(chunk) + "\n\n"; }

}  // namespace

kj::Promise<void> sendJson(kj::HttpService::Response& response, const ServerContext& context, int status,
                           const std::string& body, int retryAfterSeconds) {
  kj::HttpHeaders headers(context.headerTable);
  headers.set(kj::HttpHeaderId::CONTENT_TYPE, "application/json");
  kj::String retry = kj::str(retryAfterSeconds);
  if (retryAfterSeconds > 0) headers.set(context.retryAfter, retry);
  auto text = kj::heapString(body.data(), body.size());
  auto stream = response.send(uint(status), statusText(status), headers, uint64_t(text.size()));
  auto written = stream->write(text.begin(), text.size());
  return written.attach(kj::mv(stream), kj::mv(text));
}

kj::Promise<void> sendError(kj::HttpService::Response& response, const ServerContext& context, const ApiError& error) {
  if (context.options.onError) context.options.onError(error);
  return sendJson(response, context, error.status, dumpJson(error.toJson()), error.retryAfterSeconds);
}

CompletionExchange::CompletionExchange(ServerContext& context, ApiRequest request, kj::HttpService::Response& response)
    : context_(context), request_(std::move(request)), response_(response),
      channel_(std::make_shared<EventChannel>()) {
  const bool chat = request_.endpoint == ApiEndpoint::kChatCompletions;
  const uint64_t number = ++context_.requests;
  identity_.id = std::string(chat ? "chatcmpl-" : "cmpl-") + std::to_string(number);
  identity_.created = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  identity_.model = context_.options.modelName;
  usage_.promptTokens = int64_t(request_.promptTokens.size());

  std::vector<SequenceRequest> sequences;
  std::vector<SequenceSink> sinks;
  for (int32_t i = 0; i < request_.n; ++i) {
    SequenceRequest sequence{request_.promptTokens, request_.params, number * 1000003 + uint64_t(i)};
    // n choices with one seed would all draw alike: each choice gets its own.
    if (sequence.params.seed) sequence.params.seed = *sequence.params.seed + uint64_t(i);
    sequences.push_back(std::move(sequence));
    sinks.push_back([channel = channel_, i](SequenceEvent&& event) { channel->push({i, std::move(event)}); });
    choices_.push_back({});
    choices_.back().pending.index = i;
    choices_.back().pending.first = true;
  }
  try {
    ids_ = context_.scheduler.submit(std::move(sequences), std::move(sinks));
  } catch (const Error& error) {
    if (error.kind() == ErrorKind::kOverloaded) {
      throw ApiError{.status = 429, .message = error.what(), .type = "server_overloaded_error",
                     .code = "queue_full", .retryAfterSeconds = 1};
    }
    throw ApiError{.status = 400, .message = error.what(), .param = "prompt", .code = "context_length_exceeded"};
  }
}

CompletionExchange::~CompletionExchange() {
  channel_->close();
  for (size_t i = 0; i < ids_.size(); ++i) {
    if (!choices_[i].done) context_.scheduler.cancel(ids_[i]);
  }
}

bool CompletionExchange::allDone() const {
  for (const Choice& choice : choices_) {
    if (!choice.done) return false;
  }
  return true;
}

kj::Promise<void> CompletionExchange::run() {
  if (request_.stream) {
    kj::HttpHeaders headers(context_.headerTable);
    headers.set(kj::HttpHeaderId::CONTENT_TYPE, "text/event-stream");
    headers.set(context_.cacheControl, "no-cache");
    stream_ = response_.send(200, "OK", headers);
  }
  return pump();
}

std::string CompletionExchange::apply(std::vector<ChoiceEvent> events) {
  std::string out;
  for (ChoiceEvent& item : events) {
    Choice& choice = choices_[size_t(item.choice)];
    SequenceEvent& event = item.event;
    switch (event.kind) {
      case SequenceEvent::Kind::kToken:
        choice.pending.tokens.push_back(std::move(event.token));
        ++usage_.completionTokens;
        break;
      case SequenceEvent::Kind::kFinished:
        choice.pending.finishReason = event.finishReason;
        usage_.cachedTokens = std::max(usage_.cachedTokens, event.cachedPromptTokens);
        choice.done = true;
        break;
      case SequenceEvent::Kind::kFailed:
        failure_ = apiErrorFor(event.errorKind, event.error);
        choice.done = true;
        break;
    }
    choice.pending.text += event.text;
  }
  if (!request_.stream) return out;
  for (Choice& choice : choices_) {
    ChoiceDelta& delta = choice.pending;
    if (delta.tokens.empty() && delta.text.empty() && !delta.finishReason) continue;
    out += sse(buildChunk(request_, identity_, {delta}, nullptr, context_.tokenizer));
    size_t offset = delta.textOffset;
    for (const SampledToken& token : delta.tokens) offset += context_.tokenizer.tokenBytes(token.id).size();
    delta = ChoiceDelta{.index = delta.index, .textOffset = offset};
  }
  if (failure_) {
    out += sse(failure_->toJson());
    for (Choice& choice : choices_) choice.done = true;
  }
  if (allDone()) {
    if (request_.includeUsage) {
      nlohmann::json last = buildChunk(request_, identity_, {}, &usage_, context_.tokenizer);
      out += sse(last);
    }
    out += "data: [DONE]\n\n";
  }
  return out;
}

kj::Promise<void> CompletionExchange::pump() {
  return channel_->whenReady().then([this]() -> kj::Promise<void> {
    std::string text = apply(channel_->take());
    if (!request_.stream) {
      if (!allDone()) return pump();
      if (failure_) return sendError(response_, context_, *failure_);
      std::vector<ChoiceDelta> choices;
      for (const Choice& choice : choices_) choices.push_back(choice.pending);
      return sendJson(response_, context_, 200,
                      dumpJson(buildResponse(request_, identity_, choices, usage_, context_.tokenizer)));
    }
    writing_ = std::move(text);
    const bool done = allDone();
    auto written = writing_.empty() ? kj::Promise<void>(kj::READY_NOW)
                                    : stream_->write(writing_.data(), writing_.size());
    return written.then([this, done]() -> kj::Promise<void> {
      if (done) {
        stream_ = nullptr;  // ends the chunked body
        return kj::READY_NOW;
      }
      return pump();
    });
  });
}

}  // namespace phx
