// A real local cluster (`phalanx up`, tiny model, TP=2, UCX over shared memory) driven by curl: 64 concurrent
// streams over three rounds with every process's memory steady, a client leaving mid-stream freeing its KV blocks,
// and a worker killed mid-generation failing the request in flight, restarted by `up`, and serving the same greedy
// tokens afterwards.
#include <signal.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <chrono>
#include <thread>

#include "tests/serving/cluster_process.h"

namespace phx::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// The `data:` payloads of an SSE body, [DONE] included.
std::vector<std::string> events(const std::string& body) {
  std::vector<std::string> out;
  for (size_t at = 0; (at = body.find("data: ", at)) != std::string::npos;) {
    size_t end = body.find("\n\n", at);
    if (end == std::string::npos) end = body.size();
    out.push_back(body.substr(at + 6, end - at - 6));
    at = end;
  }
  return out;
}

// What one streamed completion delivered: its generated ids, the usage's count, and why it is not well formed.
struct StreamOutcome {
  std::vector<int> tokenIds;
  int usageTokens = -1;
  std::string finishReason;
  std::string problem;  // empty when the stream ended with [DONE] and carried no error
};

StreamOutcome readStream(const HttpResult& reply) {
  StreamOutcome outcome;
  if (reply.status != 200) outcome.problem = "HTTP " + std::to_string(reply.status) + ": " + reply.body;
  const auto payloads = events(reply.body);
  if (payloads.empty() || payloads.back() != "[DONE]") outcome.problem += " no [DONE] at the end";
  for (const std::string& payload : payloads) {
    if (payload == "[DONE]") continue;
    const json chunk = json::parse(payload, nullptr, /*allow_exceptions=*/false);
    if (chunk.is_discarded() || chunk.contains("error")) {
      outcome.problem += " bad or error event: " + payload;
      continue;
    }
    for (const json& choice : chunk["choices"]) {
      for (const json& id : choice["token_ids"]) outcome.tokenIds.push_back(id.get<int>());
      if (choice["finish_reason"].is_string()) outcome.finishReason = choice["finish_reason"];
    }
    if (chunk.contains("usage") && chunk["usage"].is_object()) {
      outcome.usageTokens = chunk["usage"]["completion_tokens"].get<int>();
    }
  }
  return outcome;
}

std::string streamRequest(const std::string& prompt, int maxTokens) {
  return json{{"prompt", prompt},       {"max_tokens", maxTokens}, {"ignore_eos", true},
              {"temperature", 0},       {"stream", true},          {"return_token_ids", true},
              {"stream_options", {{"include_usage", true}}}}
      .dump();
}

json stats(const ClusterProcess& cluster) {
  return json::parse(cluster.http("GET", "/v1/phalanx/stats").body, nullptr, /*allow_exceptions=*/false);
}

// Polls GET /health until it answers 200; false when `timeout` passes first.
bool waitHealthy(const ClusterProcess& cluster, std::chrono::seconds timeout) {
  for (const auto deadline = Clock::now() + timeout; Clock::now() < deadline;) {
    if (cluster.http("GET", "/health").status == 200) return true;
    std::this_thread::sleep_for(200ms);
  }
  return false;
}

// One cluster for the suite (ctest runs each test in its own process, so each gets its own there). The worker-kill
// test comes last (gtest keeps declaration order) and leaves the cluster healthy again anyway.
class ClusterServingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new ClusterProcess(2); }
  static void TearDownTestSuite() {
    EXPECT_EQ(cluster_->stop(), 0) << cluster_->stderrText();
    delete cluster_;
    cluster_ = nullptr;
  }
  static ClusterProcess* cluster_;
};
ClusterProcess* ClusterServingTest::cluster_ = nullptr;

TEST_F(ClusterServingTest, SixtyFourConcurrentStreamsCompleteWithSteadyMemory) {
  constexpr int kClients = 64;
  constexpr int kTokens = 24;
  constexpr int kRounds = 3;
  // Memory after round 3 may exceed that after round 1 by 10% plus this slack (allocator arenas and the prefix
  // cache's bookkeeping settle over the first rounds; a leak of a stream's state would grow by far more).
  constexpr long long kSlackBytes = 8ll << 20;
  const std::vector<std::pair<std::string, pid_t>> processes = {{"coordinator", cluster_->coordinatorPid()},
                                                                {"worker 0", cluster_->workerPid(0)},
                                                                {"worker 1", cluster_->workerPid(1)}};
  for (const auto& [name, pid] : processes) ASSERT_GT(pid, 0) << name << " not found among up's children";

  std::vector<long long> rssAfterFirst;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<HttpResult> replies(kClients);
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        const std::string prompt = "Client " + std::to_string(c) + " of round " + std::to_string(round) + " says";
        replies[size_t(c)] = cluster_->http("POST", "/v1/completions", streamRequest(prompt, kTokens),
                                            {"-N", "--max-time", "120"});
      });
    }
    for (auto& client : clients) client.join();
    for (int c = 0; c < kClients; ++c) {
      const StreamOutcome outcome = readStream(replies[size_t(c)]);
      EXPECT_EQ(outcome.problem, "") << "round " << round << ", client " << c;
      EXPECT_EQ(outcome.tokenIds.size(), size_t(kTokens)) << "round " << round << ", client " << c;
      EXPECT_EQ(outcome.usageTokens, kTokens) << "round " << round << ", client " << c;
      EXPECT_EQ(outcome.finishReason, "length") << "round " << round << ", client " << c;
    }
    std::vector<long long> rss;
    for (const auto& [name, pid] : processes) rss.push_back(residentBytes(pid));
    std::printf("round %d RSS: coordinator %.1f MB, worker 0 %.1f MB, worker 1 %.1f MB\n", round + 1,
                double(rss[0]) / 1e6, double(rss[1]) / 1e6, double(rss[2]) / 1e6);
    if (round == 0) rssAfterFirst = rss;
    if (round == kRounds - 1) {
      for (size_t p = 0; p < processes.size(); ++p) {
        EXPECT_GT(rss[p], 0) << processes[p].first << " is gone";
        EXPECT_LE(rss[p], rssAfterFirst[p] + rssAfterFirst[p] / 10 + kSlackBytes)
            << processes[p].first << ": RSS " << rss[p] << " bytes after round 3, " << rssAfterFirst[p]
            << " after round 1";
      }
    }
  }
  const json s = stats(*cluster_);
  EXPECT_EQ(s["running"], 0) << s.dump();
  EXPECT_EQ(s["kv_blocks_active"], 0) << s.dump();
}

TEST_F(ClusterServingTest, ClientDisconnectingMidStreamFreesItsBlocks) {
  const json baseline = stats(*cluster_);
  ASSERT_TRUE(baseline.is_object());
  // A generation that would run for minutes; curl leaves after 2.5 s.
  const HttpResult cut = cluster_->http("POST", "/v1/completions", streamRequest("Once upon a time", 12000),
                                        {"-N", "--max-time", "2.5"});
  EXPECT_NE(cut.body.find("data: "), std::string::npos) << "it was not streaming when the client left";
  json s;
  for (const auto deadline = Clock::now() + 5s; Clock::now() < deadline;) {
    s = stats(*cluster_);
    if (s["kv_blocks_active"] == baseline["kv_blocks_active"] && s["running"] == 0) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(s["kv_blocks_active"], baseline["kv_blocks_active"]) << s.dump();
  EXPECT_EQ(s["running"], 0) << s.dump();
  EXPECT_GT(s["sequences_cancelled"].get<int>(), baseline["sequences_cancelled"].get<int>()) << s.dump();
  EXPECT_EQ(cluster_->http("GET", "/health").status, 200);
}

TEST_F(ClusterServingTest, KilledWorkerFailsTheRequestInFlightAndIsRestarted) {
  const std::string greedy = streamRequest("The capital of France", 16);
  const StreamOutcome before = readStream(cluster_->http("POST", "/v1/completions", greedy, {"-N"}));
  ASSERT_EQ(before.problem, "");
  ASSERT_EQ(before.tokenIds.size(), 16u);

  const pid_t victim = cluster_->workerPid(1);
  ASSERT_GT(victim, 0);
  HttpResult inFlight;
  Clock::time_point ended;
  std::thread client([&] {
    inFlight = cluster_->http("POST", "/v1/completions", streamRequest("A long story", 12000),
                              {"-N", "--max-time", "30"});
    ended = Clock::now();
  });
  // Kill once it is decoding: running in the batch, then half a second of tokens.
  for (const auto deadline = Clock::now() + 30s; Clock::now() < deadline;) {
    const json s = stats(*cluster_);
    if (s.is_object() && s["running"].get<int>() > 0) break;
    std::this_thread::sleep_for(50ms);
  }
  std::this_thread::sleep_for(500ms);
  const auto killed = Clock::now();
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  client.join();
  const double secondsToEnd = std::chrono::duration<double>(ended - killed).count();
  // Measured: 0.01 s when the coordinator sees worker 1's connection drop first, 3.0 s when the survivor's UCX
  // all-reduce timeout (3 s) ends the step instead.
  EXPECT_LT(secondsToEnd, 5.0) << "the request in flight hung after its worker died\n" << cluster_->stderrText();
  const size_t errorAt = inFlight.body.find("\"error\"");
  std::printf("the request in flight ended %.2f s after the kill: HTTP %d, %s\n", secondsToEnd, inFlight.status,
              errorAt == std::string::npos ? "no error event" : inFlight.body.substr(errorAt, 200).c_str());
  // Either an HTTP error or, once streaming, an error event (before [DONE]).
  const bool httpError = inFlight.status >= 400;
  const bool errorEvent = inFlight.body.find("\"error\"") != std::string::npos;
  EXPECT_TRUE(httpError || errorEvent) << "HTTP " << inFlight.status << ", body tail: "
                                       << inFlight.body.substr(inFlight.body.size() > 600 ? inFlight.body.size() - 600
                                                                                          : 0);
  EXPECT_NE(inFlight.body.find("data: "), std::string::npos) << "it was not streaming when the worker died";

  // up restarts the worker (a new process) and the coordinator reconnects to it.
  pid_t restarted = -1;
  for (const auto deadline = Clock::now() + 60s; Clock::now() < deadline && (restarted <= 0 || restarted == victim);) {
    std::this_thread::sleep_for(200ms);
    restarted = cluster_->workerPid(1);
  }
  EXPECT_GT(restarted, 0);
  EXPECT_NE(restarted, victim);
  ASSERT_TRUE(waitHealthy(*cluster_, 90s)) << cluster_->stderrText();
  const StreamOutcome after = readStream(cluster_->http("POST", "/v1/completions", greedy, {"-N"}));
  EXPECT_EQ(after.problem, "");
  EXPECT_EQ(after.tokenIds, before.tokenIds);
  EXPECT_NE(cluster_->stderrText().find("restarting worker 1"), std::string::npos) << cluster_->stderrText();
}

}  // namespace
}  // namespace phx::testing
