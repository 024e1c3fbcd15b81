#include "tests/monitoring/metric_names.h"

#include <cctype>
#include <cstdlib>
#include <sstream>

namespace phx::testing {

void recordSomeOfEverything(CoordinatorMetrics& coordinator, WorkerMetrics& worker) {
  coordinator.onAdmitted(0.01);
  coordinator.onFirstToken(0.2);
  coordinator.onInterToken(0.03);
  coordinator.onRequestEnd({.finishReason = "stop", .promptTokens = 10, .generationTokens = 5, .e2eSeconds = 0.5});
  coordinator.onError(RequestErrorType::kOverloaded);
  coordinator.setQueue(1, 0);
  coordinator.setKvCache(3, 100);
  coordinator.onPrefixLookup(10, 4);
  coordinator.onStep({.sequences = 1, .tokens = 10, .seconds = 0.05});
  coordinator.onRankStep(0, {.compute = 0.04, .communication = 0.005, .wait = 0.001});
  worker.setIdentity(0, 0, 0);
  worker.onLoaded(1.5, 1000, 2000);
  worker.onStep({.total = 0.05, .compute = 0.04, .communication = 0.005, .wait = 0.001});
  worker.onAllReduce(0.0001, 20480);
}

std::set<std::string> familyNames(const std::vector<prometheus::MetricFamily>& families) {
  std::set<std::string> names;
  for (const auto& family : families) names.insert(family.name);
  return names;
}

std::set<std::string> seriesNames(const std::vector<prometheus::MetricFamily>& families) {
  std::set<std::string> names;
  for (const auto& family : families) {
    if (family.type == prometheus::MetricType::Histogram) {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) names.insert(family.name + suffix);
    } else {
      names.insert(family.name);
    }
  }
  return names;
}

std::set<std::string> phalanxNamesIn(std::string_view expr) {
  std::set<std::string> names;
  auto isNameChar = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':'; };
  for (size_t at = expr.find("phalanx_"); at != std::string_view::npos; at = expr.find("phalanx_", at + 1)) {
    if (at > 0 && isNameChar(expr[at - 1])) continue;  // inside another identifier
    size_t end = at;
    while (end < expr.size() && isNameChar(expr[end])) ++end;
    names.insert(std::string(expr.substr(at, end - at)));
    at = end - 1;
  }
  return names;
}

std::vector<Sample> parseExposition(std::string_view text) {
  std::vector<Sample> samples;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    Sample sample;
    size_t at = line.find_first_of("{ ");
    sample.name = line.substr(0, at);
    if (at != std::string::npos && line[at] == '{') {
      // label="value" pairs; values here never hold escaped quotes.
      while (line[at] != '}') {
        size_t equals = line.find('=', at + 1);
        size_t close = line.find('"', equals + 2);
        std::string key = line.substr(at + 1, equals - at - 1);
        sample.labels[key] = line.substr(equals + 2, close - equals - 2);
        at = close + 1;  // ',' or '}'
      }
      ++at;
    }
    sample.value = std::strtod(line.c_str() + at, nullptr);
    samples.push_back(std::move(sample));
  }
  return samples;
}

std::optional<double> sampleValue(const std::vector<Sample>& samples, std::string_view name,
                                  const std::map<std::string, std::string>& labels) {
  std::optional<double> found;
  for (const auto& sample : samples) {
    if (sample.name != name) continue;
    bool matches = true;
    for (const auto& [key, value] : labels) {
      auto label = sample.labels.find(key);
      matches = matches && label != sample.labels.end() && label->second == value;
    }
    if (!matches) continue;
    if (found) return std::nullopt;  // ambiguous
    found = sample.value;
  }
  return found;
}

namespace {

void collectExpressions(const nlohmann::json& panels, std::vector<std::string>& out) {
  for (const auto& panel : panels) {
    for (const auto& target : panel.value("targets", nlohmann::json::array())) {
      if (target.contains("expr")) out.push_back(target.at("expr").get<std::string>());
    }
    if (panel.contains("panels")) collectExpressions(panel.at("panels"), out);  // collapsed rows
  }
}

}  // namespace

std::vector<std::string> dashboardExpressions(const nlohmann::json& dashboard) {
  std::vector<std::string> expressions;
  collectExpressions(dashboard.at("panels"), expressions);
  return expressions;
}

}  // namespace phx::testing
