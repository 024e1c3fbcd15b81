// The official `openai` npm client under node against a real `phalanx serve` (tests/serving/openai_client.mjs):
// completions and chat, whole and streamed, 64 concurrent streams each getting its token count, typed errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/serving/serve_process.h"

namespace phx::testing {
namespace {

TEST(ServeOpenAiClientTest, TheOfficialClientStreamsCompletionsAndChatIncludingSixtyFourAtOnce) {
  ServeProcess server;
  const std::string command = std::string("node '") + PHX_SOURCE_DIR + "/tests/serving/openai_client.mjs' '" +
                              PHX_NPM_DIR + "' '" + server.url() + "' 2>&1";
  const auto [status, out] = runShell(command);
  ASSERT_EQ(status, 0) << out;
  const nlohmann::json summary = nlohmann::json::parse(out.substr(out.rfind('{')));
  EXPECT_EQ(summary["concurrentStreams"], 64);
  EXPECT_NE(summary["errorMessage"].get<std::string>().find("does not exist"), std::string::npos);
  const nlohmann::json stats = nlohmann::json::parse(server.http("GET", "/v1/phalanx/stats").body);
  EXPECT_EQ(stats["kv_blocks_active"], 0);
  EXPECT_EQ(stats["sequences_failed"], 0);
  EXPECT_EQ(server.stop(), 0) << server.stderrText();
}

}  // namespace
}  // namespace phx::testing
