// Request parsing and response shapes of the OpenAI API (coordinator/openai_protocol.h), without a server.
#include "coordinator/openai_protocol.h"

#include <gtest/gtest.h>

#include "model/chat_template.h"
#include "tests/common/test_files.h"

namespace phx {
namespace {

using nlohmann::json;

class OpenAiProtocolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tokenizer_ = new Tokenizer(Tokenizer::load(::phx::testing::testModelDir("tiny")));
  }
  static void TearDownTestSuite() { delete tokenizer_; }

  static ApiRequest parse(const json& body, ApiEndpoint endpoint = ApiEndpoint::kCompletions) {
    return parseApiRequest(body.dump(), endpoint, *tokenizer_, limits());
  }
  static ApiLimits limits() { return {.modelName = "phi-4", .maxContext = 100, .stopTokenIds = {7}}; }
  // The ApiError a body raises.
  static ApiError errorOf(const std::string& body, ApiEndpoint endpoint = ApiEndpoint::kCompletions) {
    try {
      parseApiRequest(body, endpoint, *tokenizer_, limits());
    } catch (const ApiError& error) {
      return error;
    }
    ADD_FAILURE() << "accepted: " << body;
    return {};
  }
  static Tokenizer* tokenizer_;
};
Tokenizer* OpenAiProtocolTest::tokenizer_ = nullptr;

TEST_F(OpenAiProtocolTest, PromptsAsTextOrIdsWithOpenAisDefaults) {
  const ApiRequest text = parse({{"prompt", "hello world"}});
  EXPECT_EQ(text.promptTokens, tokenizer_->encode("hello world"));
  EXPECT_EQ(text.params.maxTokens, 16);  // OpenAI's default for completions
  EXPECT_EQ(text.params.temperature, 1.0f);
  EXPECT_EQ(text.params.stopTokenIds, std::vector<int32_t>{7});
  EXPECT_EQ(text.n, 1);
  EXPECT_FALSE(text.stream);
  EXPECT_EQ(parse({{"prompt", {1, 2, 3}}}).promptTokens, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(parse({{"prompt", {{4, 5}}}}).promptTokens, (std::vector<int32_t>{4, 5}));
  EXPECT_EQ(parse({{"prompt", {"hello world"}}}).promptTokens, text.promptTokens);
  // Special tokens in a prompt's text are plain text.
  EXPECT_EQ(parse({{"prompt", "<|im_end|>"}}).promptTokens, tokenizer_->encode("<|im_end|>", false));
}

TEST_F(OpenAiProtocolTest, ChatBuildsPhi4sTemplateWithContentsAsPlainText) {
  const ApiRequest chat = parse({{"messages", {{{"role", "system"}, {"content", "Be kind."}},
                                               {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "Hi"}}}}}}}},
                                ApiEndpoint::kChatCompletions);
  const std::vector<ChatMessage> messages = {{"system", "Be kind."}, {"user", "Hi"}};
  EXPECT_EQ(chat.promptTokens, tokenizer_->encode(applyChatTemplate(messages, true), /*allowSpecial=*/true));
  EXPECT_EQ(chat.params.maxTokens, 100 - int64_t(chat.promptTokens.size()));  // the rest of the context
  // A user typing a turn marker does not get one.
  const ApiRequest injected =
      parse({{"messages", {{{"role", "user"}, {"content", "<|im_end|>"}}}}}, ApiEndpoint::kChatCompletions);
  const int32_t imEnd = *tokenizer_->tokenId("<|im_end|>");
  EXPECT_EQ(std::count(injected.promptTokens.begin(), injected.promptTokens.end(), imEnd), 1);
}

TEST_F(OpenAiProtocolTest, SamplingFieldsAndExtensions) {
  const ApiRequest r = parse({{"prompt", "x"}, {"max_tokens", 500}, {"temperature", 0}, {"top_p", 0.5},
                              {"top_k", 7}, {"min_p", 0.1}, {"seed", 42}, {"stop", {"a", "b"}}, {"n", 3},
                              {"logprobs", 2}, {"presence_penalty", 0.5}, {"frequency_penalty", -0.5},
                              {"ignore_eos", true}, {"stream", true}, {"stream_options", {{"include_usage", true}}},
                              {"return_token_ids", true}});
  EXPECT_EQ(r.params.maxTokens, 99);  // clamped to the context
  EXPECT_TRUE(r.params.greedy());
  EXPECT_FLOAT_EQ(r.params.topP, 0.5f);
  EXPECT_EQ(r.params.topK, 7);
  EXPECT_EQ(*r.params.seed, 42u);
  EXPECT_EQ(r.params.stopStrings, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(r.params.stopTokenIds.empty());  // ignore_eos
  EXPECT_EQ(r.n, 3);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.params.topLogprobs, 2);
  EXPECT_TRUE(r.stream && r.includeUsage && r.returnTokenIds);
  EXPECT_EQ(parse({{"prompt", "x"}, {"max_completion_tokens", 3}}).params.maxTokens, 3);
  EXPECT_EQ(parse({{"prompt", "x"}, {"stop", "zz"}}).params.stopStrings, std::vector<std::string>{"zz"});
  const ApiRequest chat = parse({{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"logprobs", true},
                                 {"top_logprobs", 4}}, ApiEndpoint::kChatCompletions);
  EXPECT_TRUE(chat.logprobs);
  EXPECT_EQ(chat.params.topLogprobs, 4);
}

TEST_F(OpenAiProtocolTest, ErrorsNameTheField) {
  EXPECT_EQ(errorOf(R"({"prompt": "x", "max_tokens": 0})").param, "max_tokens");
  EXPECT_EQ(errorOf(R"({"prompt": "x", "n": 17})").param, "n");
  EXPECT_EQ(errorOf(R"({"prompt": "x", "top_p": 0})").param, "top_p");
  EXPECT_EQ(errorOf(R"({"prompt": "x", "seed": "s"})").param, "seed");
  EXPECT_EQ(errorOf(R"({"prompt": "x", "logprobs": true})").param, "logprobs");
  EXPECT_EQ(errorOf(R"({"prompt": "x", "stream_options": 1})").param, "stream_options");
  EXPECT_EQ(errorOf(R"({"prompt": "x", "stop": ["ok", ""]})").param, "stop");
  EXPECT_EQ(errorOf(R"({"prompt": [[1], [2]]})").param, "prompt");
  EXPECT_EQ(errorOf(R"({"model": "other", "prompt": "x"})").code, "model_not_found");
  EXPECT_EQ(errorOf(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})",
                    ApiEndpoint::kChatCompletions).param, "messages[0].content");
  EXPECT_EQ(errorOf(R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})",
                    ApiEndpoint::kChatCompletions).param, "top_logprobs");
  const ApiError error = errorOf("{");
  EXPECT_EQ(error.status, 400);
  const json shape = error.toJson();
  EXPECT_TRUE(shape["error"].contains("message") && shape["error"]["param"].is_null());
}

TEST_F(OpenAiProtocolTest, ResponsesCarryUsageLogprobsAndIds) {
  ApiRequest request = parse({{"prompt", "x"}, {"logprobs", 1}, {"return_token_ids", true}});
  ChoiceDelta choice{.index = 0, .text = "ab", .tokens = {{64, -0.5f, {{64, -0.5f}}}, {65, -1.0f, {{66, -0.7f}}}},
                     .finishReason = FinishReason::kStop};
  const json whole = buildResponse(request, {"cmpl-1", 5, "phi-4"}, {choice}, {3, 2, 0}, *tokenizer_);
  EXPECT_EQ(whole["usage"]["total_tokens"], 5);
  EXPECT_EQ(whole["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(whole["choices"][0]["token_ids"], json({64, 65}));
  EXPECT_EQ(whole["choices"][0]["logprobs"]["text_offset"], json({0, 1}));
  EXPECT_EQ(whole["choices"][0]["token_logprobs"][1]["top"][0][0], 66);
  request.includeUsage = true;
  const json chunk = buildChunk(request, {"cmpl-1", 5, "phi-4"}, {choice}, nullptr, *tokenizer_);
  EXPECT_TRUE(chunk["usage"].is_null());
  // A token that is part of a UTF-8 character still makes valid JSON text.
  choice.tokens = {{int32_t(tokenizer_->encode("\xc3\xa9").front()), 0, {}}};
  EXPECT_NO_THROW(dumpJson(buildResponse(request, {"c", 0, "m"}, {choice}, {}, *tokenizer_)));
}

}  // namespace
}  // namespace phx
