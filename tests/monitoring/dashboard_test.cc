// The Grafana dashboard and the docs against the registries: the dashboard parses, uses a datasource variable,
// and queries only metrics that CoordinatorMetrics and WorkerMetrics register; docs/metrics.md describes every
// family; the example scrape config passes promtool.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "monitoring/coordinator_metrics.h"
#include "monitoring/worker_metrics.h"
#include "tests/monitoring/metric_names.h"
#include "tests/monitoring/prometheus_server.h"

namespace phx {
namespace {

std::string readSourceFile(const std::string& relative) {
  std::ifstream in(std::string(PHX_SOURCE_DIR) + "/" + relative);
  if (!in) throw std::runtime_error("cannot read " + relative);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

struct Registered {
  std::set<std::string> families;
  std::set<std::string> series;  // what a query may name (histograms with _bucket, _sum, _count)
};

Registered registeredMetrics() {
  CoordinatorMetrics coordinator;
  WorkerMetrics worker;
  testing::recordSomeOfEverything(coordinator, worker);
  Registered registered;
  for (const auto& families : {coordinator.registry()->Collect(), worker.collectable()->Collect()}) {
    registered.families.merge(testing::familyNames(families));
    registered.series.merge(testing::seriesNames(families));
  }
  return registered;
}

TEST(DashboardTest, ParsesAndUsesADatasourceVariable) {
  auto dashboard = nlohmann::json::parse(readSourceFile("monitoring/phalanx-dashboard.json"));
  EXPECT_EQ(dashboard.at("title"), "Phalanx");
  bool hasDatasourceVariable = false;
  for (const auto& variable : dashboard.at("templating").at("list")) {
    hasDatasourceVariable |= variable.at("type") == "datasource" && variable.at("query") == "prometheus";
  }
  EXPECT_TRUE(hasDatasourceVariable);
  std::set<int> ids;
  for (const auto& panel : dashboard.at("panels")) {
    EXPECT_TRUE(ids.insert(panel.at("id").get<int>()).second) << "duplicate panel id " << panel.at("id");
    EXPECT_EQ(panel.at("datasource").at("uid"), "${datasource}") << panel.at("title");
    EXPECT_FALSE(panel.at("targets").empty()) << panel.at("title");
  }
}

TEST(DashboardTest, QueriesOnlyRegisteredMetrics) {
  auto dashboard = nlohmann::json::parse(readSourceFile("monitoring/phalanx-dashboard.json"));
  auto registered = registeredMetrics();
  auto expressions = testing::dashboardExpressions(dashboard);
  ASSERT_GE(expressions.size(), 20u);
  std::set<std::string> used;
  for (const auto& expr : expressions) {
    auto names = testing::phalanxNamesIn(expr);
    EXPECT_FALSE(names.empty()) << "no phalanx_ metric in: " << expr;
    for (const auto& name : names) {
      EXPECT_TRUE(registered.series.count(name)) << name << " (in " << expr << ") is not registered";
      used.insert(name);
    }
  }
  // The panels the issue asks for, by the metric each must show.
  for (const char* needed :
       {"phalanx_requests_total", "phalanx_generation_tokens_total", "phalanx_time_to_first_token_seconds_bucket",
        "phalanx_inter_token_latency_seconds_bucket", "phalanx_request_e2e_seconds_bucket", "phalanx_requests_running",
        "phalanx_requests_waiting", "phalanx_kv_cache_usage_ratio", "phalanx_batch_size_sum",
        "phalanx_rank_compute_seconds_total", "phalanx_rank_communication_seconds_total",
        "phalanx_rank_wait_seconds_total", "phalanx_allreduce_seconds_bucket", "phalanx_errors_total",
        "phalanx_worker_rss_bytes"}) {
    EXPECT_TRUE(used.count(needed)) << "no panel shows " << needed;
  }
}

TEST(DashboardTest, PhalanxNamesAreFoundInsideExpressions) {
  EXPECT_EQ(testing::phalanxNamesIn("histogram_quantile(0.99, sum by (le) (rate(phalanx_a_bucket[1m])))"),
            std::set<std::string>{"phalanx_a_bucket"});
  EXPECT_EQ(testing::phalanxNamesIn("phalanx_x / phalanx_y{worker=\"1\"}"),
            (std::set<std::string>{"phalanx_x", "phalanx_y"}));
  EXPECT_TRUE(testing::phalanxNamesIn("my_phalanx_thing").empty());
}

TEST(DashboardTest, DocsDescribeEveryFamily) {
  std::string docs = readSourceFile("docs/metrics.md");
  for (const auto& family : registeredMetrics().families) {
    EXPECT_NE(docs.find("`" + family + "`"), std::string::npos) << "docs/metrics.md does not describe " << family;
  }
}

TEST(DashboardTest, ExampleScrapeConfigPassesPromtool) {
  auto check =
      testing::runCommand({"promtool", "check", "config", std::string(PHX_SOURCE_DIR) + "/monitoring/prometheus.yml"});
  EXPECT_EQ(check.exitCode, 0) << check.output;
}

}  // namespace
}  // namespace phx
