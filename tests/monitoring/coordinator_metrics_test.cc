// CoordinatorMetrics: every family the serving issue lists, named by Prometheus' conventions (promtool's linter
// agrees), exact values in the text format, and no lost counts when several threads record at once.
#include "monitoring/coordinator_metrics.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/monitoring/metric_names.h"
#include "tests/monitoring/prometheus_server.h"

namespace phx {
namespace {

using testing::parseExposition;
using testing::sampleValue;

TEST(CoordinatorMetricsTest, RegistersEveryFamilyTheIssueLists) {
  CoordinatorMetrics metrics;
  WorkerMetrics worker;
  testing::recordSomeOfEverything(metrics, worker);
  auto names = testing::familyNames(metrics.registry()->Collect());
  for (const char* expected :
       {"phalanx_time_to_first_token_seconds", "phalanx_inter_token_latency_seconds", "phalanx_request_e2e_seconds",
        "phalanx_request_queue_seconds", "phalanx_prompt_tokens_total", "phalanx_generation_tokens_total",
        "phalanx_requests_total", "phalanx_requests_running", "phalanx_requests_waiting",
        "phalanx_kv_cache_blocks_used", "phalanx_kv_cache_blocks_capacity", "phalanx_kv_cache_usage_ratio",
        "phalanx_batch_size", "phalanx_step_tokens", "phalanx_step_seconds", "phalanx_prefix_cache_hits_total",
        "phalanx_prefix_cache_queries_total", "phalanx_request_replays_total", "phalanx_errors_total",
        "phalanx_rank_compute_seconds_total",
        "phalanx_rank_communication_seconds_total", "phalanx_rank_wait_seconds_total"}) {
    EXPECT_TRUE(names.count(expected)) << expected << " is not registered";
  }
  EXPECT_EQ(names.size(), 22u);
}

TEST(CoordinatorMetricsTest, PromtoolFindsNoNamingProblems) {
  CoordinatorMetrics metrics;
  WorkerMetrics worker;
  testing::recordSomeOfEverything(metrics, worker);
  std::string text = metrics.serialize();
  auto lint = testing::runCommand({"promtool", "check", "metrics"}, text);
  EXPECT_EQ(lint.exitCode, 0) << lint.output << "\n" << text;
  EXPECT_EQ(lint.output, "") << "promtool check metrics complains:\n" << lint.output;
}

TEST(CoordinatorMetricsTest, CountsRequestsTokensAndLatencies) {
  CoordinatorMetrics metrics;
  metrics.onAdmitted(0.004);
  metrics.onFirstToken(0.25);
  for (int i = 0; i < 9; ++i) metrics.onInterToken(0.02);
  metrics.onRequestEnd({.finishReason = "length", .promptTokens = 30, .generationTokens = 10, .e2eSeconds = 0.5});
  metrics.onRequestEnd({.finishReason = "stop", .promptTokens = 12, .generationTokens = 3, .e2eSeconds = 1.5});
  metrics.onRequestEnd({.finishReason = "stop", .promptTokens = 8, .generationTokens = 0, .e2eSeconds = 0.1});
  auto samples = parseExposition(metrics.serialize());

  EXPECT_EQ(sampleValue(samples, "phalanx_requests_total", {{"finish_reason", "stop"}}), 2);
  EXPECT_EQ(sampleValue(samples, "phalanx_requests_total", {{"finish_reason", "length"}}), 1);
  EXPECT_EQ(sampleValue(samples, "phalanx_requests_total", {{"finish_reason", "cancelled"}}), 0);
  EXPECT_EQ(sampleValue(samples, "phalanx_prompt_tokens_total"), 50);
  EXPECT_EQ(sampleValue(samples, "phalanx_generation_tokens_total"), 13);
  EXPECT_EQ(sampleValue(samples, "phalanx_inter_token_latency_seconds_count"), 9);
  EXPECT_EQ(sampleValue(samples, "phalanx_time_to_first_token_seconds_count"), 1);
  EXPECT_EQ(sampleValue(samples, "phalanx_request_e2e_seconds_count"), 3);
  EXPECT_DOUBLE_EQ(*sampleValue(samples, "phalanx_request_e2e_seconds_sum"), 2.1);
  // Buckets are cumulative: 0.5 s and 0.1 s fall at or below le="0.5", 1.5 s above it; the first bucket is 1 ms.
  EXPECT_EQ(sampleValue(samples, "phalanx_request_e2e_seconds_bucket", {{"le", "0.5"}}), 2);
  EXPECT_EQ(sampleValue(samples, "phalanx_request_e2e_seconds_bucket", {{"le", "+Inf"}}), 3);
  EXPECT_EQ(sampleValue(samples, "phalanx_request_queue_seconds_bucket", {{"le", "0.001"}}), 0);
  EXPECT_EQ(sampleValue(samples, "phalanx_request_queue_seconds_bucket", {{"le", "0.005"}}), 1);
  EXPECT_EQ(sampleValue(samples, "phalanx_request_queue_seconds_bucket", {{"le", "60"}}), 1);
}

TEST(CoordinatorMetricsTest, EveryErrorTypeIsExposedFromZero) {
  CoordinatorMetrics metrics;
  metrics.onError(RequestErrorType::kContextTooLong);
  metrics.onError(RequestErrorType::kContextTooLong);
  metrics.onError(RequestErrorType::kWorkerDisconnected);
  auto samples = parseExposition(metrics.serialize());
  EXPECT_EQ(sampleValue(samples, "phalanx_errors_total", {{"type", "context_too_long"}}), 2);
  EXPECT_EQ(sampleValue(samples, "phalanx_errors_total", {{"type", "worker_disconnected"}}), 1);
  for (const char* zero : {"invalid_request", "overloaded", "internal"}) {
    EXPECT_EQ(sampleValue(samples, "phalanx_errors_total", {{"type", zero}}), 0) << zero;
  }
}

TEST(CoordinatorMetricsTest, GaugesFollowTheScheduler) {
  CoordinatorMetrics metrics;
  metrics.setQueue(7, 3);
  metrics.setKvCache(25, 100);
  metrics.onPrefixLookup(64, 48);
  metrics.onStep({.sequences = 7, .tokens = 519, .seconds = 0.08});
  auto samples = parseExposition(metrics.serialize());
  EXPECT_EQ(sampleValue(samples, "phalanx_requests_running"), 7);
  EXPECT_EQ(sampleValue(samples, "phalanx_requests_waiting"), 3);
  EXPECT_EQ(sampleValue(samples, "phalanx_kv_cache_blocks_used"), 25);
  EXPECT_EQ(sampleValue(samples, "phalanx_kv_cache_blocks_capacity"), 100);
  EXPECT_DOUBLE_EQ(*sampleValue(samples, "phalanx_kv_cache_usage_ratio"), 0.25);
  EXPECT_EQ(sampleValue(samples, "phalanx_prefix_cache_queries_total"), 64);
  EXPECT_EQ(sampleValue(samples, "phalanx_prefix_cache_hits_total"), 48);
  EXPECT_EQ(sampleValue(samples, "phalanx_batch_size_bucket", {{"le", "4"}}), 0);
  EXPECT_EQ(sampleValue(samples, "phalanx_batch_size_bucket", {{"le", "8"}}), 1);
  EXPECT_EQ(sampleValue(samples, "phalanx_step_tokens_bucket", {{"le", "1024"}}), 1);
  EXPECT_EQ(sampleValue(samples, "phalanx_step_tokens_sum"), 519);

  metrics.setKvCache(0, 0);  // no pool yet: the ratio is 0, not NaN
  EXPECT_EQ(sampleValue(parseExposition(metrics.serialize()), "phalanx_kv_cache_usage_ratio"), 0);
}

TEST(CoordinatorMetricsTest, ManyThreadsRecordWithoutLosingCounts) {
  CoordinatorMetrics metrics;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&metrics, t] {
      // Each thread creates its own label values lazily while the others do the same.
      std::string reason = "reason" + std::to_string(t % 3);
      for (int i = 0; i < kPerThread; ++i) {
        metrics.onRequestEnd({.finishReason = reason, .promptTokens = 1, .generationTokens = 2, .e2eSeconds = 0.01});
        metrics.onRankStep(t % 4, {.compute = 0.5, .communication = 0.25, .wait = 0.125});
        metrics.onInterToken(0.001);
        if (i % 100 == 0) metrics.serialize();  // scrapes race with recording
      }
    });
  }
  for (auto& thread : threads) thread.join();
  auto samples = parseExposition(metrics.serialize());
  EXPECT_EQ(sampleValue(samples, "phalanx_prompt_tokens_total"), kThreads * kPerThread);
  EXPECT_EQ(sampleValue(samples, "phalanx_generation_tokens_total"), 2 * kThreads * kPerThread);
  EXPECT_EQ(sampleValue(samples, "phalanx_inter_token_latency_seconds_count"), kThreads * kPerThread);
  double requests = 0;
  for (int r = 0; r < 3; ++r) {
    requests += sampleValue(samples, "phalanx_requests_total", {{"finish_reason", "reason" + std::to_string(r)}})
                    .value_or(-1e9);
  }
  EXPECT_EQ(requests, kThreads * kPerThread);
  for (int worker = 0; worker < 4; ++worker) {
    // Two threads per worker label, each adding 0.5 s of compute per step: exact in binary floating point.
    std::map<std::string, std::string> labels{{"worker", std::to_string(worker)}};
    EXPECT_EQ(sampleValue(samples, "phalanx_rank_compute_seconds_total", labels), 2 * kPerThread * 0.5);
    EXPECT_EQ(sampleValue(samples, "phalanx_rank_communication_seconds_total", labels), 2 * kPerThread * 0.25);
    EXPECT_EQ(sampleValue(samples, "phalanx_rank_wait_seconds_total", labels), 2 * kPerThread * 0.125);
  }
}

}  // namespace
}  // namespace phx
