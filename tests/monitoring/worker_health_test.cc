// WorkerHealth: 200 only while serving with a turning event loop; 503 while starting, draining or stalled, each
// named in the JSON body; and served at /health beside /metrics on the worker's metrics port over real HTTP.
#include "monitoring/worker_health.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "monitoring/worker_metrics.h"
#include "tests/monitoring/prometheus_server.h"

namespace phx {
namespace {

using Phase = WorkerHealth::Phase;

nlohmann::json body(const HttpReply& reply) { return nlohmann::json::parse(reply.body); }

TEST(WorkerHealthTest, OnlyAServingWorkerIsHealthy) {
  WorkerHealth health;
  HttpReply starting = health.report();
  EXPECT_EQ(starting.status, 503);
  EXPECT_EQ(body(starting)["phase"], "starting");
  EXPECT_EQ(body(starting)["state"], "idle");

  health.setPhase(Phase::kServing);
  health.setState("ready");
  HttpReply serving = health.report();
  EXPECT_EQ(serving.status, 200);
  EXPECT_EQ(serving.contentType, "application/json");
  EXPECT_EQ(body(serving)["status"], "ok");
  EXPECT_EQ(body(serving)["state"], "ready");

  health.setPhase(Phase::kDraining);
  HttpReply draining = health.report();
  EXPECT_EQ(draining.status, 503);
  EXPECT_EQ(body(draining)["status"], "unavailable");
  EXPECT_EQ(body(draining)["phase"], "draining");
}

TEST(WorkerHealthTest, AnEventLoopThatStopsTurningIsStalled) {
  WorkerHealth health;
  health.setPhase(Phase::kServing);
  health.heartbeat();
  const auto now = WorkerHealth::Clock::now();
  EXPECT_EQ(health.reportAt(now + WorkerHealth::kStallLimit - std::chrono::seconds(1)).status, 200);
  HttpReply stalled = health.reportAt(now + WorkerHealth::kStallLimit + std::chrono::seconds(1));
  EXPECT_EQ(stalled.status, 503);
  EXPECT_EQ(body(stalled)["status"], "stalled");
  EXPECT_GT(body(stalled)["loop_age_seconds"].get<double>(), double(WorkerHealth::kStallLimit.count()));
}

TEST(WorkerHealthTest, ServedBesideTheMetricsOverHttp) {
  WorkerHealth health;
  WorkerMetrics metrics;
  const int port = metrics.startExposer("127.0.0.1:0", &health);
  auto reply = testing::httpGet(port, "/health");
  EXPECT_EQ(reply.status, 503) << reply.body;
  EXPECT_EQ(nlohmann::json::parse(reply.body)["phase"], "starting");
  health.setPhase(Phase::kServing);
  reply = testing::httpGet(port, "/health");
  EXPECT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(nlohmann::json::parse(reply.body)["status"], "ok");
  EXPECT_EQ(testing::httpGet(port, "/metrics").status, 200);
}

}  // namespace
}  // namespace phx
