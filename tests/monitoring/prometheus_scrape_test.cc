// Debian's real Prometheus server scrapes a coordinator registry and two workers' Exposers (in this process, on
// free ports) every second; the test finds the series through its HTTP query API with the values recorded, and
// runs every expression of the Grafana dashboard against it.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "monitoring/coordinator_metrics.h"
#include "monitoring/metrics_exposer.h"
#include "monitoring/worker_metrics.h"
#include "tests/monitoring/metric_names.h"
#include "tests/monitoring/prometheus_server.h"

namespace phx {
namespace {

using namespace std::chrono_literals;

TEST(PrometheusScrapeTest, RealServerFindsCoordinatorAndWorkerSeries) {
  // What a short serving run would record: 7 requests of 5 tokens, 2 tensor-parallel workers.
  CoordinatorMetrics coordinator;
  for (int i = 0; i < 7; ++i) {
    coordinator.onAdmitted(0.002);
    coordinator.onFirstToken(0.15);
    for (int t = 1; t < 5; ++t) coordinator.onInterToken(0.03);
    coordinator.onRequestEnd({.finishReason = "length", .promptTokens = 20, .generationTokens = 5, .e2eSeconds = 0.3});
    coordinator.onStep({.sequences = 1, .tokens = 20, .seconds = 0.1});
    for (int worker = 0; worker < 2; ++worker) {
      coordinator.onRankStep(worker, {.compute = 0.08, .communication = 0.01, .wait = 0.002});
    }
  }
  coordinator.onError(RequestErrorType::kOverloaded);
  coordinator.setQueue(0, 0);
  coordinator.setKvCache(12, 64);
  WorkerMetrics workers[2];
  std::vector<int> workerPorts;
  for (int rank = 0; rank < 2; ++rank) {
    workers[rank].setIdentity(rank, 0, rank);
    workers[rank].onLoaded(0.5, 100 << 20, 8 << 20);
    for (int i = 0; i < 50; ++i) workers[rank].onAllReduce(0.00005, 20480);
    workerPorts.push_back(workers[rank].startExposer("127.0.0.1:0"));
  }
  // The coordinator's HTTP server serves serialize() on its client port; an Exposer stands in for it here.
  MetricsExposer coordinatorExposer("127.0.0.1:0");
  coordinatorExposer.add(coordinator.registry());

  testing::ScratchDir dir;
  auto configFile = dir.path() / "prometheus.yml";
  std::ofstream(configFile) << testing::scrapeConfig(coordinatorExposer.port(), workerPorts);
  auto check = testing::runCommand({"promtool", "check", "config", configFile.string()});
  ASSERT_EQ(check.exitCode, 0) << check.output;

  testing::PrometheusServer server(configFile, dir.path() / "data", testing::freeTcpPort());
  ASSERT_TRUE(server.waitReady(20s)) << "prometheus did not become ready:\n" << server.log();

  // Poll until every expectation holds (first scrapes land within a second or two of readiness).
  struct Expectation {
    std::string promql;
    double value;
  };
  const std::vector<Expectation> expectations = {
      {"count(up == 1)", 3},
      {"up{job=\"phalanx-coordinator\"}", 1},
      {"phalanx_time_to_first_token_seconds_count", 7},
      {"phalanx_inter_token_latency_seconds_count", 28},
      {"phalanx_generation_tokens_total", 35},
      {"phalanx_prompt_tokens_total", 140},
      {"phalanx_requests_total{finish_reason=\"length\"}", 7},
      {"phalanx_errors_total{type=\"overloaded\"}", 1},
      {"phalanx_kv_cache_usage_ratio", 12.0 / 64},
      {"sum(phalanx_rank_compute_seconds_total)", 2 * 7 * 0.08},
      {"sum(phalanx_worker_loaded{job=\"phalanx-workers\"})", 2},
      {"phalanx_allreduce_seconds_count{worker=\"1\",stage=\"0\",tp_rank=\"1\"}", 50},
      {"sum(phalanx_allreduce_bytes_total)", 2 * 50 * 20480},
      {"count(phalanx_worker_rss_bytes > 1e6)", 2},
  };
  auto deadline = std::chrono::steady_clock::now() + 30s;
  std::vector<std::string> failing;
  do {
    failing.clear();
    for (const auto& expected : expectations) {
      auto value = testing::queryValue(server.port(), expected.promql);
      if (!value || std::abs(*value - expected.value) > 1e-9 * std::max(1.0, expected.value)) {
        failing.push_back(expected.promql + " = " + (value ? std::to_string(*value) : "no single series") +
                          ", expected " + std::to_string(expected.value));
      }
    }
    if (failing.empty()) break;
    std::this_thread::sleep_for(250ms);
  } while (std::chrono::steady_clock::now() < deadline);
  for (const auto& failure : failing) ADD_FAILURE() << failure;
  ASSERT_TRUE(failing.empty()) << "prometheus log:\n" << server.log();

  // Every dashboard expression is valid PromQL over these series (Grafana substitutes $__rate_interval).
  std::ifstream dashboardFile(std::string(PHX_SOURCE_DIR) + "/monitoring/phalanx-dashboard.json");
  auto dashboard = nlohmann::json::parse(dashboardFile);
  for (std::string expr : testing::dashboardExpressions(dashboard)) {
    for (size_t at; (at = expr.find("$__rate_interval")) != std::string::npos;) expr.replace(at, 16, "1m");
    auto answer = testing::query(server.port(), expr);
    EXPECT_EQ(answer.value("status", ""), "success") << expr << "\n" << answer.dump();
  }
  EXPECT_TRUE(server.running()) << server.log();
}

}  // namespace
}  // namespace phx
