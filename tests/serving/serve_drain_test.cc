// Graceful drain of a real `phalanx serve`: on SIGTERM /health turns 503, a new completion is refused with 503 and
// Retry-After, the stream already running finishes every token it was asked for, and the process exits 0.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/serving/serve_process.h"

namespace phx::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::string request(int maxTokens, bool stream) {
  return json{{"prompt", "Once upon a time"},
              {"max_tokens", maxTokens},
              {"ignore_eos", true},
              {"temperature", 0},
              {"stream", stream}}
      .dump();
}

TEST(ServeDrainTest, SigtermFinishesRunningRequestsRefusesNewOnesAndExitsZero) {
  ServeProcess server({"--drain-timeout", "120"});
  HttpResult running;
  std::thread client([&] { running = server.http("POST", "/v1/completions", request(6000, true), {"-N"}); });
  for (int i = 0; i < 600; ++i) {
    const json stats = json::parse(server.http("GET", "/v1/phalanx/stats").body, nullptr, false);
    if (stats.is_object() && stats["generated_tokens"].get<int>() > 0) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(kill(server.pid(), SIGTERM), 0);
  std::this_thread::sleep_for(300ms);  // the stop is polled every 50 ms
  const HttpResult health = server.http("GET", "/health");
  EXPECT_EQ(health.status, 503) << health.body;
  EXPECT_NE(health.body.find("draining"), std::string::npos) << health.body;
  const HttpResult refused = server.http("POST", "/v1/completions", request(4, false));
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_NE(refused.headers.find("Retry-After"), std::string::npos) << refused.headers;
  EXPECT_NE(refused.body.find("shutting down"), std::string::npos) << refused.body;
  client.join();
  EXPECT_EQ(running.status, 200);
  EXPECT_NE(running.body.find("data: [DONE]"), std::string::npos) << "the running stream was cut";
  EXPECT_NE(running.body.find("\"finish_reason\":\"length\""), std::string::npos);
  EXPECT_EQ(running.body.find("\"error\""), std::string::npos);
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.stderrText();
}

}  // namespace
}  // namespace phx::testing
