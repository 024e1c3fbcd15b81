// What the monitoring tests compare: the metric names the registries expose, the phalanx_* names a PromQL
// expression uses, and the expressions of a Grafana dashboard.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <prometheus/metric_family.h>

#include "monitoring/coordinator_metrics.h"
#include "monitoring/worker_metrics.h"

namespace phx::testing {

// Records something in every family, labelled ones included (a family without a series is not exposed).
void recordSomeOfEverything(CoordinatorMetrics& coordinator, WorkerMetrics& worker);

// Family names as registered.
std::set<std::string> familyNames(const std::vector<prometheus::MetricFamily>& families);
// Names a query can use: counters and gauges by their name, histograms as NAME_bucket, NAME_sum and NAME_count.
std::set<std::string> seriesNames(const std::vector<prometheus::MetricFamily>& families);

// One sample line of the text exposition format: `name{label="value",...} value`.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};
std::vector<Sample> parseExposition(std::string_view text);
// The value of the one sample named `name` whose labels include `labels`; nullopt when none (or several) match.
std::optional<double> sampleValue(const std::vector<Sample>& samples, std::string_view name,
                                  const std::map<std::string, std::string>& labels = {});

// Every phalanx_* identifier in a PromQL expression.
std::set<std::string> phalanxNamesIn(std::string_view expr);
// Every targets[].expr of every panel (nested rows included).
std::vector<std::string> dashboardExpressions(const nlohmann::json& dashboard);

}  // namespace phx::testing
