#include "coordinator/openai_protocol.h"

#include <cmath>
#include <limits>

#include "common/error.h"
#include "model/chat_template.h"

namespace phx {
namespace {

using nlohmann::json;

[[noreturn]] void invalid(const std::string& param, const std::string& message, const std::string& code = "") {
  throw ApiError{.status = 400, .message = message, .param = param, .code = code};
}

// The field when present and not null.
const json* field(const json& body, const char* name) {
  const auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

double number(const json& body, const char* name, double fallback, double lo, double hi) {
  const json* value = field(body, name);
  if (value == nullptr) return fallback;
  if (!value->is_number()) invalid(name, std::string("'") + name + "' must be a number");
  const double x = value->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi) {
    invalid(name, std::string("'") + name + "' must lie in [" + json(lo).dump() + ", " + json(hi).dump() + "], got " +
                      value->dump());
  }
  return x;
}

int64_t integer(const json& body, const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const json* value = field(body, name);
  if (value == nullptr) return fallback;
  if (!value->is_number_integer()) invalid(name, std::string("'") + name + "' must be an integer");
  const int64_t x =
      value->is_number_unsigned() && value->get<uint64_t>() > uint64_t(hi) ? hi + 1 : value->get<int64_t>();
  if (x < lo || x > hi) {
    invalid(name, std::string("'") + name + "' must lie in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                      "], got " + value->dump());
  }
  return x;
}

bool boolean(const json& body, const char* name, bool fallback) {
  const json* value = field(body, name);
  if (value == nullptr) return fallback;
  if (!value->is_boolean()) invalid(name, std::string("'") + name + "' must be true or false");
  return value->get<bool>();
}

std::vector<std::string> stopStrings(const json& body) {
  const json* value = field(body, "stop");
  if (value == nullptr) return {};
  if (value->is_string()) return {value->get<std::string>()};
  if (!value->is_array() || value->size() > 16) invalid("stop", "'stop' must be a string or a list of at most 16");
  std::vector<std::string> stops;
  for (const json& stop : *value) {
    if (!stop.is_string() || stop.get<std::string>().empty())
      invalid("stop", "each 'stop' entry must be a non-empty string");
    stops.push_back(stop.get<std::string>());
  }
  return stops;
}

std::vector<int32_t> tokenArray(const json& value, const Tokenizer& tokenizer) {
  std::vector<int32_t> ids;
  for (const json& id : value) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= tokenizer.vocabSize()) {
      invalid("prompt", "a token id prompt must hold integers in [0, " + std::to_string(tokenizer.vocabSize()) + ")");
    }
    ids.push_back(id.get<int32_t>());
  }
  return ids;
}

std::vector<int32_t> completionPrompt(const json& body, const Tokenizer& tokenizer) {
  const json* prompt = field(body, "prompt");
  if (prompt == nullptr) invalid("prompt", "'prompt' is required");
  std::vector<int32_t> ids;
  if (prompt->is_string()) {
    ids = tokenizer.encode(prompt->get<std::string>(), /*allowSpecial=*/false);
  } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_number()) {
    ids = tokenArray(*prompt, tokenizer);
  } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    ids = tokenizer.encode((*prompt)[0].get<std::string>(), false);
  } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_array()) {
    ids = tokenArray((*prompt)[0], tokenizer);
  } else {
    invalid("prompt", "'prompt' must be a string or an array of token ids (one prompt per request)");
  }
  if (ids.empty()) invalid("prompt", "the prompt is empty");
  return ids;
}

std::string messageContent(const json& message, size_t index) {
  const std::string where = "messages[" + std::to_string(index) + "].content";
  const json* content = field(message, "content");
  if (content == nullptr) invalid(where, "'" + where + "' is required");
  if (content->is_string()) return content->get<std::string>();
  if (!content->is_array()) invalid(where, "'" + where + "' must be a string or a list of text parts");
  std::string text;
  for (const json& part : *content) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string()) {
      invalid(where, "'" + where + "' parts must be {\"type\": \"text\", \"text\": ...}");
    }
    text += part["text"].get<std::string>();
  }
  return text;
}

// The request's messages, checked with OpenAI-shaped errors naming the field, as Phi-4's chat template in ids
// (model/chat_template.h: contents as plain text, so a user cannot inject a turn boundary).
std::vector<int32_t> chatPrompt(const json& body, const Tokenizer& tokenizer) {
  const json* messages = field(body, "messages");
  if (messages == nullptr || !messages->is_array()) invalid("messages", "'messages' must be a list of messages");
  if (messages->empty()) invalid("messages", "'messages' must not be empty");
  std::vector<ChatMessage> turns;
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& message = (*messages)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!message.is_object()) invalid(where, "'" + where + "' must be an object");
    const json* role = field(message, "role");
    if (role == nullptr || !role->is_string()) invalid(where + ".role", "'" + where + ".role' must be a string");
    const std::string name = role->get<std::string>();
    if (name != "system" && name != "user" && name != "assistant") {
      invalid(where + ".role", "'" + where + ".role' must be system, user or assistant, got '" + name + "'");
    }
    turns.push_back({name, messageContent(message, i)});
  }
  return chatTemplateIds(turns, /*addGenerationPrompt=*/true, tokenizer);
}

void checkModel(const json& body, const ApiLimits& limits) {
  const json* model = field(body, "model");
  if (model == nullptr) return;
  if (!model->is_string()) invalid("model", "'model' must be a string");
  if (model->get<std::string>() != limits.modelName) {
    invalid("model", "the model '" + model->get<std::string>() + "' does not exist; this server serves '" +
                         limits.modelName + "'", "model_not_found");
  }
}

}  // namespace

json ApiError::toJson() const {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

ApiError apiErrorFor(ErrorKind kind, const std::string& message) {
  switch (kind) {
    case ErrorKind::kInvalidArgument:
    case ErrorKind::kUnsupported: return {.status = 400, .message = message};
    case ErrorKind::kDisconnected:
      return {.status = 503, .message = message, .type = "server_unavailable_error", .code = "cluster_unavailable",
              .retryAfterSeconds = 5};
    case ErrorKind::kOverloaded:
      return {.status = 503, .message = message, .type = "server_unavailable_error", .code = "unavailable",
              .retryAfterSeconds = 1};
    default: return {.status = 500, .message = message, .type = "server_error"};
  }
}

std::string dumpJson(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

ApiRequest parseApiRequest(const std::string& body, ApiEndpoint endpoint, const Tokenizer& tokenizer,
                           const ApiLimits& limits) {
  json parsed;
  try {
    parsed = json::parse(body);
  } catch (const json::exception& error) {
    invalid("", std::string("the request body is not valid JSON (UTF-8): ") + error.what());
  }
  if (!parsed.is_object()) invalid("", "the request body must be a JSON object");
  checkModel(parsed, limits);
  ApiRequest request;
  request.endpoint = endpoint;
  const bool chat = endpoint == ApiEndpoint::kChatCompletions;
  request.promptTokens = chat ? chatPrompt(parsed, tokenizer) : completionPrompt(parsed, tokenizer);

  SamplingParams& p = request.params;
  const int64_t maxInt = std::numeric_limits<int32_t>::max();
  p.temperature = float(number(parsed, "temperature", 1.0, 0.0, 2.0));
  p.topP = float(number(parsed, "top_p", 1.0, 0.0, 1.0));
  if (p.topP <= 0.0f) invalid("top_p", "'top_p' must be above 0");
  p.topK = int32_t(integer(parsed, "top_k", 0, -1, maxInt));
  p.minP = float(number(parsed, "min_p", 0.0, 0.0, 1.0));
  p.presencePenalty = float(number(parsed, "presence_penalty", 0.0, -2.0, 2.0));
  p.frequencyPenalty = float(number(parsed, "frequency_penalty", 0.0, -2.0, 2.0));
  if (field(parsed, "seed") != nullptr) {
    p.seed =
        uint64_t(integer(parsed, "seed", 0, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()));
  }
  // Completions default to 16 tokens as OpenAI's do; chat to the rest of the context.
  const int64_t room = limits.maxContext - int64_t(request.promptTokens.size());
  int64_t maxTokens = integer(parsed, "max_tokens", chat ? maxInt : 16, 1, maxInt);
  maxTokens = integer(parsed, "max_completion_tokens", maxTokens, 1, maxInt);
  p.maxTokens = int32_t(std::max<int64_t>(1, std::min(maxTokens, room)));
  p.stopStrings = stopStrings(parsed);
  p.stopTokenIds = boolean(parsed, "ignore_eos", false) ? std::vector<int32_t>{} : limits.stopTokenIds;

  request.n = int32_t(integer(parsed, "n", 1, 1, limits.maxChoices));
  request.stream = boolean(parsed, "stream", false);
  if (const json* options = field(parsed, "stream_options")) {
    if (!options->is_object()) invalid("stream_options", "'stream_options' must be an object");
    request.includeUsage = boolean(*options, "include_usage", false);
  }
  if (chat) {
    request.logprobs = boolean(parsed, "logprobs", false);
    p.topLogprobs = int32_t(integer(parsed, "top_logprobs", 0, 0, limits.maxTopLogprobs));
    if (p.topLogprobs > 0 && !request.logprobs) invalid("top_logprobs", "'top_logprobs' needs 'logprobs': true");
  } else if (const json* logprobs = field(parsed, "logprobs")) {
    if (logprobs->is_boolean()) invalid("logprobs", "'logprobs' must be an integer for completions");
    request.logprobs = true;
    p.topLogprobs = int32_t(integer(parsed, "logprobs", 0, 0, limits.maxTopLogprobs));
  }
  request.returnTokenIds = boolean(parsed, "return_token_ids", false);
  try {
    validateSamplingParams(p);
  } catch (const Error& error) {
    invalid("", error.what());
  }
  return request;
}

json Usage::toJson() const {
  return {{"prompt_tokens", promptTokens},
          {"completion_tokens", completionTokens},
          {"total_tokens", promptTokens + completionTokens},
          {"prompt_tokens_details", {{"cached_tokens", cachedTokens}}}};
}

namespace {

json completionLogprobs(const std::vector<SampledToken>& tokens, const Tokenizer& tokenizer, size_t textOffset) {
  json strings = json::array(), logprobs = json::array(), top = json::array(), offsets = json::array();
  for (const SampledToken& token : tokens) {
    strings.push_back(std::string(tokenizer.tokenBytes(token.id)));
    logprobs.push_back(token.logprob);
    json alternatives = json::object();
    for (const auto& [id, logprob] : token.topLogprobs) alternatives[std::string(tokenizer.tokenBytes(id))] = logprob;
    top.push_back(std::move(alternatives));
    offsets.push_back(textOffset);
    textOffset += tokenizer.tokenBytes(token.id).size();
  }
  return {{"tokens", strings}, {"token_logprobs", logprobs}, {"top_logprobs", top}, {"text_offset", offsets}};
}

json tokenEntry(int32_t id, float logprob, const Tokenizer& tokenizer) {
  const std::string_view bytes = tokenizer.tokenBytes(id);
  return {{"token", std::string(bytes)}, {"logprob", logprob},
          {"bytes", std::vector<int>(bytes.begin(), bytes.end())}};
}

json chatLogprobs(const std::vector<SampledToken>& tokens, const Tokenizer& tokenizer) {
  json content = json::array();
  for (const SampledToken& token : tokens) {
    json entry = tokenEntry(token.id, token.logprob, tokenizer);
    json top = json::array();
    for (const auto& [id, logprob] : token.topLogprobs) top.push_back(tokenEntry(id, logprob, tokenizer));
    entry["top_logprobs"] = std::move(top);
    content.push_back(std::move(entry));
  }
  return {{"content", content}};
}

json choiceJson(const ApiRequest& request, const ChoiceDelta& choice, bool chunk, const Tokenizer& tokenizer) {
  const bool chat = request.endpoint == ApiEndpoint::kChatCompletions;
  json out{{"index", choice.index}};
  if (chat && chunk) {
    json delta = json::object();
    if (choice.first) delta["role"] = "assistant";
    if (!choice.text.empty() || choice.first) delta["content"] = choice.text;
    out["delta"] = std::move(delta);
  } else if (chat) {
    out["message"] = {{"role", "assistant"}, {"content", choice.text}};
  } else {
    out["text"] = choice.text;
  }
  if (request.logprobs) {
    out["logprobs"] =
        chat ? chatLogprobs(choice.tokens, tokenizer) : completionLogprobs(choice.tokens, tokenizer, choice.textOffset);
  } else {
    out["logprobs"] = nullptr;
  }
  out["finish_reason"] = choice.finishReason ? json(finishReasonName(*choice.finishReason)) : json(nullptr);
  if (request.returnTokenIds) {
    json ids = json::array();
    for (const SampledToken& token : choice.tokens) ids.push_back(token.id);
    out["token_ids"] = std::move(ids);
    if (request.logprobs) {
      // Ids beside the logprobs: OpenAI's shapes key alternatives by their text, which need not be unique.
      json top = json::array();
      for (const SampledToken& token : choice.tokens) {
        json pairs = json::array();
        for (const auto& [id, logprob] : token.topLogprobs) pairs.push_back({id, logprob});
        top.push_back({{"id", token.id}, {"logprob", token.logprob}, {"top", std::move(pairs)}});
      }
      out["token_logprobs"] = std::move(top);
    }
  }
  return out;
}

json envelope(const ApiRequest& request, const ResponseIdentity& identity, bool chunk) {
  const bool chat = request.endpoint == ApiEndpoint::kChatCompletions;
  return {{"id", identity.id},
          {"object", chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
          {"created", identity.created},
          {"model", identity.model}};
}

}  // namespace

json buildResponse(const ApiRequest& request, const ResponseIdentity& identity, const std::vector<ChoiceDelta>& choices,
                   const Usage& usage, const Tokenizer& tokenizer) {
  json out = envelope(request, identity, false);
  json list = json::array();
  for (const ChoiceDelta& choice : choices) list.push_back(choiceJson(request, choice, false, tokenizer));
  out["choices"] = std::move(list);
  out["usage"] = usage.toJson();
  return out;
}

json buildChunk(const ApiRequest& request, const ResponseIdentity& identity, const std::vector<ChoiceDelta>& choices,
                const Usage* usage, const Tokenizer& tokenizer) {
  json out = envelope(request, identity, true);
  json list = json::array();
  for (const ChoiceDelta& choice : choices) list.push_back(choiceJson(request, choice, true, tokenizer));
  out["choices"] = std::move(list);
  if (request.includeUsage) out["usage"] = usage != nullptr ? usage->toJson() : json(nullptr);
  return out;
}

}  // namespace phx
