// Bad requests against a real `phalanx serve`: each gets its 4xx with an OpenAI-shaped error
// ({"error": {"message", "type", "param", "code"}}), and the server keeps answering afterwards.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/serving/serve_process.h"

namespace phx::testing {
namespace {

using nlohmann::json;

struct BadRequest {
  const char* name;
  const char* path;
  std::string body;
  int status;
  const char* messageHas;  // a piece of the message
};

std::vector<BadRequest> badRequests() {
  const std::string hugePrompt(1 << 20, 'a');
  std::string oneMegabyte = R"({"prompt":")";
  for (int i = 0; i < (1 << 20) / 8; ++i) oneMegabyte += "word is ";
  oneMegabyte += R"(","max_tokens":4})";
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  return {
      {"a stop list nested 100000 deep", "/v1/completions", R"({"prompt": "x", "stop": )" + deep + "}", 400,
       "'stop'"},
      {"a message content nested 100000 deep", "/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": )" + deep + "}]}", 400, "content"},
      {"malformed JSON", "/v1/completions", R"({"prompt": "x",)", 400, "not valid JSON"},
      {"not an object", "/v1/completions", "[1, 2, 3]", 400, "JSON object"},
      {"prompt of the wrong type", "/v1/completions", R"({"prompt": 5})", 400, "'prompt'"},
      {"max_tokens of the wrong type", "/v1/completions", R"({"prompt": "x", "max_tokens": "ten"})", 400,
       "'max_tokens' must be an integer"},
      {"temperature of the wrong type", "/v1/completions", R"({"prompt": "x", "temperature": "hot"})", 400,
       "'temperature' must be a number"},
      {"stream of the wrong type", "/v1/completions", R"({"prompt": "x", "stream": "yes"})", 400, "'stream'"},
      {"stop of the wrong type", "/v1/completions", R"({"prompt": "x", "stop": 7})", 400, "'stop'"},
      {"unknown model", "/v1/completions", R"({"model": "gpt-17", "prompt": "x"})", 400, "does not exist"},
      {"empty messages", "/v1/chat/completions", R"({"messages": []})", 400, "must not be empty"},
      {"messages of the wrong type", "/v1/chat/completions", R"({"messages": "hi"})", 400, "'messages'"},
      {"unknown role", "/v1/chat/completions", R"({"messages": [{"role": "robot", "content": "hi"}]})", 400,
       "system, user or assistant"},
      {"a message without content", "/v1/chat/completions", R"({"messages": [{"role": "user"}]})", 400,
       "content"},
      {"a 1 MB prompt", "/v1/completions", oneMegabyte, 400, "maximum context length is 16384"},
      {"invalid UTF-8", "/v1/completions", "{\"prompt\": \"ab\xff\xfe\"}", 400, "UTF-8"},
      {"negative max_tokens", "/v1/completions", R"({"prompt": "x", "max_tokens": -5})", 400, "'max_tokens'"},
      {"huge n", "/v1/completions", R"({"prompt": "x", "n": 1000000000})", 400, "'n'"},
      {"token id outside the vocabulary", "/v1/completions", R"({"prompt": [1, 2, 99999999]})", 400,
       "token id"},
      {"empty prompt", "/v1/completions", R"({"prompt": ""})", 400, "empty"},
      {"top_logprobs above 20", "/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 50})", 400,
       "'top_logprobs'"},
      {"temperature out of range", "/v1/completions", R"({"prompt": "x", "temperature": 5})", 400,
       "'temperature'"},
      {"a body over the size limit", "/v1/completions", R"({"prompt": ")" + hugePrompt + hugePrompt +
       hugePrompt + hugePrompt + hugePrompt + hugePrompt + hugePrompt + hugePrompt + R"("})", 413, "exceeds"},
  };
}

TEST(ServeBadRequestTest, EachBadRequestGetsAnOpenAiShapedErrorAndTheServerCarriesOn) {
  ServeProcess server;
  for (const BadRequest& bad : badRequests()) {
    SCOPED_TRACE(bad.name);
    const HttpResult reply = server.http("POST", bad.path, bad.body);
    EXPECT_EQ(reply.status, bad.status) << reply.body;
    const json body = json::parse(reply.body, nullptr, false);
    ASSERT_TRUE(body.is_object() && body.contains("error")) << reply.body;
    const json& error = body["error"];
    for (const char* key : {"message", "type", "param", "code"}) EXPECT_TRUE(error.contains(key)) << key;
    EXPECT_EQ(error["type"], "invalid_request_error");
    EXPECT_NE(error["message"].get<std::string>().find(bad.messageHas), std::string::npos)
        << error["message"].get<std::string>();
    EXPECT_EQ(server.http("GET", "/health").status, 200);
  }
  const HttpResult good = server.http("POST", "/v1/completions", R"({"prompt": "Hello", "max_tokens": 3})");
  EXPECT_EQ(good.status, 200) << good.body;
  EXPECT_TRUE(server.running());
  EXPECT_EQ(server.stop(), 0) << server.stderrText();
}

}  // namespace
}  // namespace phx::testing
