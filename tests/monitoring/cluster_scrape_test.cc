// Debian's real Prometheus server scrapes a real local cluster (`phalanx up`, tiny model, TP=2): the coordinator's
// /metrics on the client port and both workers' metrics ports, every second. After a few completions the test finds,
// through Prometheus' query API, every target up and the serving, per-rank and all-reduce series with the values the
// completions imply.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "tests/monitoring/prometheus_server.h"
#include "tests/serving/cluster_process.h"

namespace phx {
namespace {

using namespace std::chrono_literals;

TEST(ClusterScrapeTest, RealPrometheusFindsTheClusterSeries) {
  testing::ClusterProcess cluster(2);

  // A few completions of different lengths; the generated count comes from their usage.
  int requests = 0;
  int generated = 0;
  for (int maxTokens : {3, 5, 8}) {
    const std::string body = "{\"prompt\":\"Metrics check " + std::to_string(maxTokens) +
                              "\",\"max_tokens\":" + std::to_string(maxTokens) +
                              ",\"ignore_eos\":true,\"temperature\":0}";
    const auto reply = cluster.http("POST", "/v1/completions", body);
    ASSERT_EQ(reply.status, 200) << reply.body;
    generated += nlohmann::json::parse(reply.body)["usage"]["completion_tokens"].get<int>();
    ++requests;
  }
  ASSERT_EQ(generated, 3 + 5 + 8);

  testing::ScratchDir dir;
  const auto configFile = dir.path() / "prometheus.yml";
  std::ofstream(configFile) << testing::scrapeConfig(cluster.port(),
                                                  {cluster.workerMetricsPort(0), cluster.workerMetricsPort(1)});
  testing::PrometheusServer server(configFile, dir.path() / "data", testing::freeTcpPort());
  ASSERT_TRUE(server.waitReady(30s)) << "prometheus did not become ready:\n" << server.log();

  struct Expectation {
    std::string promql;
    std::function<bool(double)> holds;
    std::string expected;
  };
  auto equals = [](double want) { return [want](double v) { return std::abs(v - want) < 1e-9; }; };
  auto above = [](double floor) { return [floor](double v) { return v > floor; }; };
  const std::vector<Expectation> expectations = {
      {"count(up == 1)", equals(3), "3 targets up"},
      {"up{job=\"phalanx-coordinator\"}", equals(1), "1"},
      {"phalanx_generation_tokens_total", equals(generated), std::to_string(generated)},
      {"sum(phalanx_requests_total)", equals(requests), std::to_string(requests)},
      {"phalanx_requests_total{finish_reason=\"length\"}", equals(requests), std::to_string(requests)},
      {"phalanx_time_to_first_token_seconds_count", equals(requests), std::to_string(requests)},
      {"phalanx_rank_compute_seconds_total{worker=\"0\"}", above(0), "> 0"},
      {"phalanx_rank_compute_seconds_total{worker=\"1\"}", above(0), "> 0"},
      // Every decode step all-reduces at least once per layer on each rank.
      {"phalanx_allreduce_seconds_count{job=\"phalanx-workers\",worker=\"0\",tp_rank=\"0\"}", above(generated),
       "> " + std::to_string(generated)},
      {"phalanx_allreduce_seconds_count{job=\"phalanx-workers\",worker=\"1\",tp_rank=\"1\"}", above(generated),
       "> " + std::to_string(generated)},
      // Each rank holds its half of a model of ~26 MB, so a shard is megabytes, not bytes.
      {"phalanx_worker_weight_bytes{worker=\"0\"}", above(1e6), "> 1 MB"},
      {"phalanx_worker_weight_bytes{worker=\"1\"}", above(1e6), "> 1 MB"},
      {"sum(phalanx_worker_loaded)", equals(2), "2"},
      // Both workers report one compute, and it is the same one (a TP group must not mix them).
      {"sum(phalanx_worker_matmul_compute_info)", equals(2), "2"},
      {"max(count by (compute) (phalanx_worker_matmul_compute_info == 1))", equals(2), "2"},
  };
  const auto deadline = std::chrono::steady_clock::now() + 40s;
  std::vector<std::string> failing;
  do {
    failing.clear();
    for (const auto& expected : expectations) {
      const auto value = testing::queryValue(server.port(), expected.promql);
      if (!value || !expected.holds(*value)) {
        failing.push_back(expected.promql + " = " + (value ? std::to_string(*value) : "no single series") +
                          ", expected " + expected.expected);
      }
    }
    if (failing.empty()) break;
    std::this_thread::sleep_for(250ms);
  } while (std::chrono::steady_clock::now() < deadline);
  for (const auto& failure : failing) ADD_FAILURE() << failure;
  EXPECT_TRUE(failing.empty()) << "prometheus log:\n" << server.log();
  EXPECT_TRUE(server.running()) << server.log();
  EXPECT_EQ(cluster.stop(), 0) << cluster.stderrText();
}

// The probes the Helm chart gives worker pods: /health on the metrics port of a real worker process, serving a
// loaded, connected shard.
TEST(ClusterScrapeTest, WorkersAnswerHealthOnTheirMetricsPort) {
  testing::ClusterProcess cluster(2);
  for (int rank : {0, 1}) {
    const auto reply = testing::httpGet(cluster.workerMetricsPort(rank), "/health");
    ASSERT_EQ(reply.status, 200) << "worker " << rank << ": " << reply.body;
    const auto health = nlohmann::json::parse(reply.body);
    EXPECT_EQ(health["status"], "ok") << reply.body;
    EXPECT_EQ(health["phase"], "serving") << reply.body;
    EXPECT_EQ(health["state"], "ready") << reply.body;
    EXPECT_LT(health["loop_age_seconds"].get<double>(), 30.0) << reply.body;
  }
  EXPECT_EQ(cluster.stop(), 0) << cluster.stderrText();
}

}  // namespace
}  // namespace phx
