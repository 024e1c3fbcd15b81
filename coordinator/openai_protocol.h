// OpenAI's completions and chat completions API as plain data: requests parsed and validated from JSON (every
// problem an ApiError with OpenAI's error shape), responses and stream chunks built as JSON. No I/O: the HTTP
// server (coordinator/server.h) moves the bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "coordinator/generation.h"
#include "coordinator/sampler.h"
#include "common/error.h"
#include "model/tokenizer.h"

namespace phx {

// An error as OpenAI reports it: {"error": {"message", "type", "param", "code"}} with an HTTP status.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the request field at fault, or empty
  std::string code;   // empty or a machine-readable reason
  int retryAfterSeconds = 0;  // 429/503: sent as Retry-After

  nlohmann::json toJson() const;
};

// A request that failed while it ran, by the kind of its failure: the one mapping from error kinds to HTTP statuses
// (the metrics' error types follow the same kinds, coordinator/server_metrics.cc). A disconnect or overload is
// 503 with Retry-After (the cluster is recovering or stopping), a refused input 400, anything else 500.
ApiError apiErrorFor(ErrorKind kind, const std::string& message);

enum class ApiEndpoint { kCompletions, kChatCompletions };

struct ApiLimits {
  std::string modelName;
  int64_t maxContext = 0;
  std::vector<int32_t> stopTokenIds;  // the model's end-of-sequence ids (dropped by ignore_eos)
  int32_t maxChoices = 16;        // n
  int32_t maxTopLogprobs = 20;    // OpenAI's cap
};

struct ApiRequest {
  ApiEndpoint endpoint = ApiEndpoint::kCompletions;
  std::vector<int32_t> promptTokens;
  SamplingParams params;
  int32_t n = 1;
  bool stream = false;
  bool includeUsage = false;     // stream_options.include_usage
  bool logprobs = false;         // report logprobs (with params.topLogprobs alternatives)
  // Phalanx extension: each choice carries its generated ids ("token_ids") and, with logprobs, each token's id,
  // logprob and alternatives as [id, logprob] pairs ("token_logprobs").
  bool returnTokenIds = false;
};

// Throws ApiError (400) naming the field for malformed JSON, wrong types, out-of-range values, an unknown model,
// empty messages or prompts.
ApiRequest parseApiRequest(const std::string& body, ApiEndpoint endpoint, const Tokenizer& tokenizer,
                           const ApiLimits& limits);

// One choice as it accumulates (a stream sends only what is new since the last chunk).
struct ChoiceDelta {
  int32_t index = 0;
  std::string text;
  std::vector<SampledToken> tokens;
  std::optional<FinishReason> finishReason;
  bool first = false;  // chat streams announce the assistant role in a choice's first chunk
  size_t textOffset = 0;  // bytes of the choice's tokens sent before these (completions logprobs' text_offset)
};

struct Usage {
  int64_t promptTokens = 0;
  int64_t completionTokens = 0;
  int64_t cachedTokens = 0;
  nlohmann::json toJson() const;
};

struct ResponseIdentity {
  std::string id;  // cmpl-... or chatcmpl-...
  int64_t created = 0;
  std::string model;
};

// A whole (non-streamed) response.
nlohmann::json buildResponse(const ApiRequest& request, const ResponseIdentity& identity,
                             const std::vector<ChoiceDelta>& choices, const Usage& usage, const Tokenizer& tokenizer);
// One stream chunk with the given choice deltas; usage (when include_usage asks) is null until the last chunk.
nlohmann::json buildChunk(const ApiRequest& request, const ResponseIdentity& identity,
                          const std::vector<ChoiceDelta>& choices, const Usage* usage, const Tokenizer& tokenizer);

// JSON as UTF-8 text; invalid UTF-8 (a token that is part of a character) becomes U+FFFD rather than throwing.
std::string dumpJson(const nlohmann::json& value);

}  // namespace phx
