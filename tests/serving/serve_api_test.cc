// A real `phalanx serve` on the tiny model driven with curl: the routes, completions and chat (whole and
// streamed), logprobs, stop strings, n, the prefix cache, a client disconnecting mid-stream, the API key, a full
// queue, and `generate --cluster` against the local `generate`.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <algorithm>
#include <fstream>
#include <thread>

#include "tests/serving/serve_process.h"

namespace phx::testing {
namespace {

using nlohmann::json;

// The `data:` payloads of an SSE body, [DONE] included.
std::vector<std::string> events(const std::string& body) {
  std::vector<std::string> out;
  for (size_t at = 0; (at = body.find("data: ", at)) != std::string::npos;) {
    const size_t end = body.find("\n\n", at);
    out.push_back(body.substr(at + 6, end - at - 6));
    at = end;
  }
  return out;
}

json stats(const ServeProcess& server) { return json::parse(server.http("GET", "/v1/phalanx/stats").body); }

class ServeApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new ServeProcess(); }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->stop(), 0) << server_->stderrText();
    delete server_;
  }
  static ServeProcess* server_;
};
ServeProcess* ServeApiTest::server_ = nullptr;

TEST_F(ServeApiTest, AnswersHealthModelsAndStats) {
  EXPECT_EQ(server_->http("GET", "/health").status, 200);
  const HttpResult models = server_->http("GET", "/v1/models");
  ASSERT_EQ(models.status, 200);
  EXPECT_EQ(json::parse(models.body)["data"][0]["id"], "phi-4");
  const json s = stats(*server_);
  EXPECT_GT(s["kv_blocks_total"].get<int>(), 0);
  EXPECT_EQ(server_->http("GET", "/v1/nothing").status, 404);
  EXPECT_EQ(server_->http("GET", "/v1/completions").status, 405);
}

TEST_F(ServeApiTest, CompletionGivesTextIdsLogprobsAndUsage) {
  const HttpResult reply = server_->http(
      "POST", "/v1/completions",
      R"({"model":"phi-4","prompt":"Hello, world","max_tokens":6,"temperature":0,"logprobs":3,"return_token_ids":true})");
  ASSERT_EQ(reply.status, 200) << reply.body;
  const json body = json::parse(reply.body);
  EXPECT_EQ(body["object"], "text_completion");
  const json& choice = body["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "length");
  EXPECT_EQ(choice["token_ids"].size(), 6u);
  EXPECT_EQ(choice["logprobs"]["tokens"].size(), 6u);
  EXPECT_EQ(choice["logprobs"]["top_logprobs"][0].size(), 3u);
  EXPECT_LE(choice["logprobs"]["token_logprobs"][0].get<double>(), 0.0);
  EXPECT_EQ(body["usage"]["prompt_tokens"], 3);  // "Hello, world" is 3 cl100k tokens
  EXPECT_EQ(body["usage"]["completion_tokens"], 6);
  EXPECT_EQ(body["usage"]["total_tokens"], 9);
}

TEST_F(ServeApiTest, StreamsCompletionsAndChatAsServerSentEvents) {
  const HttpResult completion = server_->http(
      "POST", "/v1/completions",
      R"({"prompt":[1,2,3,4],"max_tokens":5,"temperature":0,"stream":true,"n":2,"stream_options":{"include_usage":true}})",
      {"-N"});
  ASSERT_EQ(completion.status, 200) << completion.body;
  EXPECT_NE(completion.headers.find("text/event-stream"), std::string::npos);
  auto payloads = events(completion.body);
  ASSERT_GE(payloads.size(), 3u);
  EXPECT_EQ(payloads.back(), "[DONE]");
  const json usage = json::parse(payloads[payloads.size() - 2]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 10);  // two choices of five
  std::string texts[2];
  int finished = 0;
  for (size_t i = 0; i + 2 < payloads.size(); ++i) {
    const json chunk = json::parse(payloads[i]);
    for (const json& choice : chunk["choices"]) {
      texts[choice["index"].get<int>()] += choice["text"].get<std::string>();
      finished += choice["finish_reason"].is_string();
    }
  }
  EXPECT_EQ(finished, 2);
  EXPECT_EQ(texts[0], texts[1]);  // greedy: both choices alike

  const HttpResult chat = server_->http(
      "POST", "/v1/chat/completions",
      R"({"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"max_completion_tokens":4,"temperature":0,"stream":true,"logprobs":true,"top_logprobs":2})",
      {"-N"});
  ASSERT_EQ(chat.status, 200) << chat.body;
  payloads = events(chat.body);
  ASSERT_GE(payloads.size(), 2u);
  EXPECT_EQ(payloads.back(), "[DONE]");
  const json first = json::parse(payloads.front());
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(first["choices"][0]["logprobs"]["content"][0]["top_logprobs"].size(), 2u);
  EXPECT_EQ(json::parse(payloads[payloads.size() - 2])["choices"][0]["finish_reason"], "length");
}

TEST_F(ServeApiTest, ChatWholeResponseAndStopStrings) {
  const std::string request = R"({"messages":[{"role":"user","content":"Tell me"}],"max_tokens":12,"temperature":0})";
  const HttpResult whole = server_->http("POST", "/v1/chat/completions", request);
  ASSERT_EQ(whole.status, 200) << whole.body;
  const json body = json::parse(whole.body);
  EXPECT_EQ(body["object"], "chat.completion");
  const std::string text = body["choices"][0]["message"]["content"];
  ASSERT_GT(text.size(), 6u);
  // Stop at a piece of what greedy decoding produces: the text ends just before it, finish_reason "stop".
  size_t at = text.size() / 2;
  auto ascii = [&](size_t i) {
    return i + 3 <= text.size() &&
           std::all_of(text.begin() + i, text.begin() + i + 3, [](char c) { return c >= 0x20 && c < 0x7f; });
  };
  while (at < text.size() && !ascii(at)) ++at;
  ASSERT_TRUE(ascii(at)) << "no plain-ASCII stretch to stop at in: " << text;
  const std::string stop = text.substr(at, 3);
  json stopped = json::parse(request);
  stopped["stop"] = json::array({stop, "never-appears"});
  const json cut = json::parse(server_->http("POST", "/v1/chat/completions", stopped.dump()).body);
  EXPECT_EQ(cut["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(cut["choices"][0]["message"]["content"], text.substr(0, text.find(stop)));
}

TEST_F(ServeApiTest, SharedSystemPromptHitsThePrefixCacheWithIdenticalOutput) {
  std::string system;
  for (int i = 0; i < 40; ++i) system += "You are a careful assistant number " + std::to_string(i) + ". ";
  json request{{"messages", {{{"role", "system"}, {"content", system}}, {{"role", "user"}, {"content", "Hello"}}}},
               {"max_tokens", 8}, {"temperature", 0}};
  const json cold = json::parse(server_->http("POST", "/v1/chat/completions", request.dump()).body);
  const json warm = json::parse(server_->http("POST", "/v1/chat/completions", request.dump()).body);
  EXPECT_EQ(cold["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  EXPECT_GT(warm["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), 200);
  EXPECT_EQ(warm["choices"][0]["message"]["content"], cold["choices"][0]["message"]["content"]);
  // Another question under the same system prompt reuses it too.
  request["messages"][1]["content"] = "What now?";
  const json other = json::parse(server_->http("POST", "/v1/chat/completions", request.dump()).body);
  EXPECT_GT(other["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), 200);
}

TEST_F(ServeApiTest, ClientDisconnectingMidStreamFreesItsBlocks) {
  // Requests that would run for a long time; curl gives up after half a second. A stream notices at its next
  // write, a whole response by watching the socket.
  const HttpResult cut = server_->http(
      "POST", "/v1/completions",
      R"({"prompt":"Once upon a time","max_tokens":12000,"ignore_eos":true,"temperature":0,"stream":true})",
      {"-N", "--max-time", "0.5"});
  EXPECT_NE(cut.body.find("data: "), std::string::npos);  // it was streaming when the client left
  server_->http("POST", "/v1/completions", R"({"prompt":"Twice","max_tokens":12000,"ignore_eos":true})",
                {"--max-time", "0.5"});
  json s;
  for (int i = 0; i < 100; ++i) {
    s = stats(*server_);
    if (s["kv_blocks_active"] == 0 && s["running"] == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(s["kv_blocks_active"], 0) << s.dump();
  EXPECT_EQ(s["running"], 0) << s.dump();
  EXPECT_GE(s["sequences_cancelled"].get<int>(), 2) << s.dump();
  EXPECT_EQ(server_->http("GET", "/health").status, 200);
}

TEST_F(ServeApiTest, GenerateClusterGivesTheLocalGreedyTokens) {
  const std::string common = " --prompt 'The capital of France' --max-tokens 20 --temperature 0 --json 2>/dev/null";
  const auto [localStatus, local] =
      runShell(std::string(PHX_BINARY) + " generate --model " + tinyModelDir().string() + " --threads 1" + common);
  const auto [remoteStatus, remote] = runShell(std::string(PHX_BINARY) + " generate --model " +
                                               tinyModelDir().string() + " --cluster 127.0.0.1:" +
                                               std::to_string(server_->port()) + common);
  ASSERT_EQ(localStatus, 0);
  ASSERT_EQ(remoteStatus, 0) << remote;
  const json a = json::parse(local), b = json::parse(remote);
  EXPECT_EQ(a["tokens"], b["tokens"]);
  EXPECT_EQ(a["text"], b["text"]);
  EXPECT_EQ(a["finish_reason"], b["finish_reason"]);
  EXPECT_EQ(a["usage"], b["usage"]);
  // Streaming text to stdout, as the local path does.
  const auto [status, text] = runShell(std::string(PHX_BINARY) + " generate --cluster 127.0.0.1:" +
                                       std::to_string(server_->port()) +
                                       " --prompt 'The capital of France' --max-tokens 20 --temperature 0 2>/dev/null");
  EXPECT_EQ(status, 0);
  EXPECT_EQ(text, a["text"].get<std::string>());
}

TEST(ServeAuthTest, RequiresTheApiKeyWhenConfigured) {
  const auto dir = scratchDir("auth");
  std::ofstream(dir / "key") << "sekret\n";
  ServeProcess server({"--api-key-file", (dir / "key").string()});
  const std::string body = R"({"prompt":"Hi","max_tokens":2})";
  const HttpResult missing = server.http("POST", "/v1/completions", body);
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(json::parse(missing.body)["error"]["type"], "authentication_error");
  EXPECT_EQ(server.http("POST", "/v1/completions", body, {"-H", "Authorization: Bearer wrong"}).status, 401);
  EXPECT_EQ(server.http("POST", "/v1/completions", body, {"-H", "Authorization: Bearer sekret"}).status, 200);
  EXPECT_EQ(server.http("GET", "/health").status, 200);  // probes need no key
  EXPECT_EQ(server.stop(), 0);
}

TEST(ServeQueueTest, AFullQueueAnswers429WithRetryAfter) {
  ServeProcess server({"--max-running", "1", "--max-waiting", "1"});
  // One long request runs, one waits: the queue is full.
  const std::string longRequest =
      R"({"prompt":"x","max_tokens":3000,"ignore_eos":true,"stream":true})";
  std::vector<std::thread> clients;
  for (int i = 0; i < 2; ++i) {
    clients.emplace_back([&] { server.http("POST", "/v1/completions", longRequest, {"-N", "--max-time", "3"}); });
    for (int t = 0; t < 100 && stats(server)["running"].get<int>() + stats(server)["waiting"].get<int>() <= i; ++t) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  const HttpResult refused = server.http("POST", "/v1/completions", R"({"prompt":"Hi","max_tokens":2})");
  EXPECT_EQ(refused.status, 429) << refused.body;
  EXPECT_NE(refused.headers.find("Retry-After: 1"), std::string::npos) << refused.headers;
  EXPECT_EQ(json::parse(refused.body)["error"]["code"], "queue_full");
  for (auto& client : clients) client.join();
  EXPECT_EQ(server.http("POST", "/v1/completions", R"({"prompt":"Hi","max_tokens":2})").status, 200);
  EXPECT_EQ(server.stop(), 0);
}

}  // namespace
}  // namespace phx::testing
