// `phalanx generate --cluster HOST:PORT`: the request goes to a running server's /v1/completions (streamed, with
// return_token_ids so the ids and logprobs come back exactly), and the result is printed as the local path prints
// it: streamed text, or the --json object, then the summary.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/generation_output.h"
#include "cli/sse_client.h"
#include "common/error.h"

namespace phx::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

FinishReason finishReasonFrom(const std::string& name) {
  if (name == "stop") return FinishReason::kStop;
  if (name == "length") return FinishReason::kLength;
  return FinishReason::kCancelled;
}

// The request body and the route: completions with the prompt's ids when the tokenizer is at hand (--model), the
// text otherwise; a --chat message without --model goes to the chat route, which applies the template there.
std::pair<std::string, json> requestFor(const ParsedArgs& args) {
  const SamplingParams p = samplingParams(args, {});
  json body{{"max_tokens", p.maxTokens}, {"temperature", p.temperature}, {"top_p", p.topP}, {"top_k", p.topK},
            {"min_p", p.minP}, {"presence_penalty", p.presencePenalty}, {"frequency_penalty", p.frequencyPenalty},
            {"stream", true}, {"stream_options", {{"include_usage", true}}}, {"return_token_ids", true}};
  if (p.seed) body["seed"] = *p.seed;
  if (!p.stopStrings.empty()) body["stop"] = p.stopStrings;
  std::string path = "/v1/completions";
  if (args.has("model")) {
    body["prompt"] = promptTokens(args, Tokenizer::load(args.str("model")));
  } else if (args.has("prompt")) {
    body["prompt"] = args.str("prompt");
  } else if (args.has("prompt-tokens")) {
    body["prompt"] = args.integerList("prompt-tokens");
  } else if (args.has("chat")) {
    path = "/v1/chat/completions";
    body["messages"] = json::array({{{"role", "user"}, {"content", args.str("chat")}}});
  } else {
    throwInvalidArgument("give one of --prompt, --chat and --prompt-tokens");
  }
  if (p.topLogprobs > 0) {
    if (path == "/v1/completions") {
      body["logprobs"] = p.topLogprobs;
    } else {
      body["logprobs"] = true;
      body["top_logprobs"] = p.topLogprobs;
    }
  }
  return {path, body};
}

// Folds one stream chunk into the result; returns the new text.
std::string absorb(const json& chunk, GenerationResult& result) {
  if (chunk.contains("error")) {
    throw Error(ErrorKind::kDisconnected, "the server failed the request: " + chunk["error"].value("message", "?"));
  }
  if (chunk.contains("usage") && chunk["usage"].is_object()) {
    result.promptTokens = chunk["usage"].value("prompt_tokens", int64_t(0));
  }
  std::string text;
  for (const json& choice : chunk.value("choices", json::array())) {
    text += choice.contains("text") ? choice.value("text", "") : choice["delta"].value("content", "");
    if (choice.contains("token_logprobs")) {
      for (const json& entry : choice["token_logprobs"]) {
        SampledToken token{entry["id"].get<int32_t>(), entry["logprob"].get<float>(), {}};
        for (const json& pair : entry["top"])
          token.topLogprobs.emplace_back(pair[0].get<int32_t>(), pair[1].get<float>());
        result.tokens.push_back(std::move(token));
      }
    } else {
      for (const json& id : choice.value("token_ids", json::array()))
        result.tokens.push_back({id.get<int32_t>(), 0, {}});
    }
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
      result.finishReason = finishReasonFrom(choice["finish_reason"].get<std::string>());
    }
  }
  return text;
}

std::string readKey(const std::string& path) {
  std::ifstream file(path);
  if (!file) throwIoError("--api-key-file: cannot read " + path);
  std::stringstream text;
  text << file.rdbuf();
  std::string key = text.str();
  while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
  return key;
}

}  // namespace

int generateRemote(const ParsedArgs& args) {
  HttpTarget target = HttpTarget::parse(args.str("cluster"));
  if (args.has("api-key-file")) target.apiKey = readKey(args.str("api-key-file"));
  const auto [path, body] = requestFor(args);
  const bool asJson = args.has("json");
  const int32_t topLogprobs = int32_t(args.integer("top-logprobs"));

  auto io = kj::setupAsyncIo();
  SseClient client(io, target);
  GenerationResult result;
  result.finishReason = FinishReason::kCancelled;  // until the server says otherwise
  const auto start = Clock::now();
  Clock::time_point first, last;
  HttpReply reply;
  try {
    reply = client.postStream(path, body.dump(), [&](std::string_view data) {
      const size_t before = result.tokens.size();
      const std::string text = absorb(json::parse(data), result);
      if (result.tokens.size() > before) {
        last = Clock::now();
        if (before == 0) first = last;
      }
      result.text += text;
      if (!asJson && !text.empty()) {
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
      }
    }).wait(io.waitScope);
  } catch (const kj::Exception& error) {
    throw Error(ErrorKind::kDisconnected, "generate --cluster " + target.host + ":" + std::to_string(target.port) +
                                              ": " + error.getDescription().cStr());
  }
  if (reply.status != 200) {
    const json error = json::parse(reply.body, nullptr, false);
    const std::string message =
        error.is_object() && error.contains("error") ? error["error"].value("message", reply.body) : reply.body;
    throw Error(reply.status == 429 || reply.status == 503 ? ErrorKind::kOverloaded : ErrorKind::kInvalidArgument,
                "the server answered " + std::to_string(reply.status) + ": " + message);
  }
  if (!result.tokens.empty()) {
    result.prefillSeconds = std::chrono::duration<double>(first - start).count();
    result.decodeSeconds = std::chrono::duration<double>(last - first).count();
  }
  if (asJson) std::printf("%s\n", generationResultJson(result, topLogprobs).dump().c_str());
  printGenerationSummary(result);
  return 0;
}

}  // namespace phx::cli
