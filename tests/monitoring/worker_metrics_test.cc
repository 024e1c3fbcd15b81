// WorkerMetrics: identity labels added once the worker knows its rank, RSS read from /proc on every scrape, the
// step and all-reduce figures, and the Exposer serving them over real HTTP (and refusing addresses it cannot use).
#include "monitoring/worker_metrics.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "common/error.h"
#include "monitoring/metrics_exposer.h"
#include "tests/monitoring/metric_names.h"
#include "tests/monitoring/prometheus_server.h"

namespace phx {
namespace {

using testing::parseExposition;
using testing::sampleValue;

TEST(WorkerMetricsTest, IdentityLabelsJoinEverySeriesOnceKnown) {
  WorkerMetrics metrics;
  for (const auto& sample : parseExposition(metrics.serialize())) {
    EXPECT_FALSE(sample.labels.count("worker")) << sample.name << " is labelled before the worker knows its rank";
  }
  metrics.setIdentity(3, 1, 0);
  auto samples = parseExposition(metrics.serialize());
  ASSERT_GT(samples.size(), 10u);
  for (const auto& sample : samples) {
    EXPECT_EQ(sample.labels.count("worker") ? sample.labels.at("worker") : "", "3") << sample.name;
    EXPECT_EQ(sample.labels.count("stage") ? sample.labels.at("stage") : "", "1") << sample.name;
    EXPECT_EQ(sample.labels.count("tp_rank") ? sample.labels.at("tp_rank") : "", "0") << sample.name;
  }
  // Histogram buckets keep their le label beside the identity.
  EXPECT_EQ(sampleValue(samples, "phalanx_allreduce_seconds_bucket", {{"le", "+Inf"}, {"worker", "3"}}), 0);
}

TEST(WorkerMetricsTest, RecordsStepsAllReducesAndLoadState) {
  WorkerMetrics metrics;
  EXPECT_EQ(sampleValue(parseExposition(metrics.serialize()), "phalanx_worker_loaded"), 0);
  metrics.onLoaded(2.5, 1 << 20, 1 << 22);
  for (int i = 0; i < 4; ++i) metrics.onStep({.total = 0.5, .compute = 0.25, .communication = 0.125, .wait = 0.0625});
  for (int i = 0; i < 80; ++i) metrics.onAllReduce(0.00004, 5120 * 4);
  auto samples = parseExposition(metrics.serialize());
  EXPECT_EQ(sampleValue(samples, "phalanx_worker_loaded"), 1);
  EXPECT_EQ(sampleValue(samples, "phalanx_worker_load_seconds"), 2.5);
  EXPECT_EQ(sampleValue(samples, "phalanx_worker_weight_bytes"), 1 << 20);
  EXPECT_EQ(sampleValue(samples, "phalanx_worker_kv_cache_bytes"), 1 << 22);
  EXPECT_EQ(sampleValue(samples, "phalanx_worker_step_seconds_count"), 4);
  EXPECT_EQ(sampleValue(samples, "phalanx_worker_compute_seconds_total"), 1.0);
  EXPECT_EQ(sampleValue(samples, "phalanx_worker_communication_seconds_total"), 0.5);
  EXPECT_EQ(sampleValue(samples, "phalanx_worker_wait_seconds_total"), 0.25);
  EXPECT_EQ(sampleValue(samples, "phalanx_allreduce_seconds_count"), 80);
  EXPECT_EQ(sampleValue(samples, "phalanx_allreduce_seconds_bucket", {{"le", "2.5e-05"}}), 0);
  EXPECT_EQ(sampleValue(samples, "phalanx_allreduce_seconds_bucket", {{"le", "5e-05"}}), 80);
  EXPECT_EQ(sampleValue(samples, "phalanx_allreduce_bytes_total"), 80 * 5120 * 4);

  metrics.onUnloaded();
  samples = parseExposition(metrics.serialize());
  EXPECT_EQ(sampleValue(samples, "phalanx_worker_loaded"), 0);
  EXPECT_EQ(sampleValue(samples, "phalanx_worker_weight_bytes"), 0);
}

TEST(WorkerMetricsTest, ResidentMemoryIsReadAtEveryScrape) {
  WorkerMetrics metrics;
  double before = *sampleValue(parseExposition(metrics.serialize()), "phalanx_worker_rss_bytes");
  EXPECT_GT(before, 1 << 20);  // a process holds at least a megabyte
  constexpr size_t kBytes = 128 << 20;
  auto block = std::make_unique<char[]>(kBytes);
  std::memset(block.get(), 1, kBytes);  // touched, so resident
  double after = *sampleValue(parseExposition(metrics.serialize()), "phalanx_worker_rss_bytes");
  EXPECT_GT(after - before, 0.9 * kBytes) << "before " << before << ", after " << after;
  EXPECT_EQ(block[kBytes - 1], 1);
}

TEST(WorkerMetricsTest, ExposerServesTheLabelledMetricsOverHttp) {
  WorkerMetrics metrics;
  metrics.setIdentity(0, 0, 1);
  metrics.onAllReduce(0.001, 4096);
  int port = metrics.startExposer("127.0.0.1:0");
  ASSERT_GT(port, 0);
  auto response = testing::httpGet(port, "/metrics");
  ASSERT_EQ(response.status, 200) << response.body;
  auto samples = parseExposition(response.body);
  EXPECT_EQ(sampleValue(samples, "phalanx_allreduce_bytes_total", {{"tp_rank", "1"}}), 4096);
  EXPECT_TRUE(sampleValue(samples, "phalanx_worker_rss_bytes").has_value());
  auto lint = testing::runCommand({"promtool", "check", "metrics"}, response.body);
  EXPECT_EQ(lint.exitCode, 0) << lint.output;
  EXPECT_EQ(lint.output, "") << "promtool check metrics complains:\n" << lint.output;
}

TEST(WorkerMetricsTest, AddressesThatCannotServeAreRefusedByName) {
  WorkerMetrics first;
  int port = first.startExposer("127.0.0.1:0");
  WorkerMetrics second;
  try {
    second.startExposer("127.0.0.1:" + std::to_string(port));
    FAIL() << "a second exposer bound the same port";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(port)), std::string::npos) << e.what();
  }
  for (const char* bad : {"9100", "localhost:", ":9100", ""}) {
    try {
      MetricsExposer exposer(bad);
      FAIL() << "'" << bad << "' was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << bad;
      EXPECT_NE(std::string(e.what()).find("HOST:PORT"), std::string::npos) << e.what();
    }
  }
  // The first exposer still answers.
  EXPECT_EQ(testing::httpGet(port, "/metrics").status, 200);
}

}  // namespace
}  // namespace phx
