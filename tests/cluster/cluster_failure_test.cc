// Failures of real worker processes: a worker killed mid-generation makes the next step throw a clear error
// naming it within a few seconds (never a hang); restarted at the same address, it is reconnected, reloaded and
// rejoined by the executor in the background, and service resumes with the same results, without restarting the
// coordinator. A stopped (hung) worker is noticed by the heartbeat.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>

#include "common/elapsed.h"
#include "common/error.h"
#include "tests/cluster/cluster_harness.h"
#include "tests/cluster/worker_processes.h"

namespace phx::testing {
namespace {

using Clock = std::chrono::steady_clock;

StepBatch decodeStep(int32_t token, int64_t cached) {
  StepBatch step;
  step.tokens = {token};
  step.sequences = {{cached, 1, {3, 7}, LogitsFor::kLast}};
  step.candidates = kDefaultCandidates;
  return step;
}

TEST(ClusterFailureTest, KilledWorkerFailsTheStepFastAndRestartedWorkerRestoresService) {
  const ShardPlan plan = planFor("tiny", 2, 1);
  UcxWorkers workers(2);
  auto cluster = startCluster("tiny", plan, workers.endpoints());
  const ScheduleResult before = runSchedule(*cluster, 4, kDefaultCandidates);

  // Mid-generation: the sequence's next decode step meets a dead worker.
  workers.kill(1);
  const auto start = Clock::now();
  try {
    cluster->run(decodeStep(before.greedy.back(), 13));
    FAIL() << "a step with a dead worker succeeded";
  } catch (const Error& error) {
    const double seconds = secondsSince(start);
    std::printf("failed after %.3f s: %s\n", seconds, error.what());
    EXPECT_EQ(error.kind(), ErrorKind::kDisconnected);
    EXPECT_NE(std::string(error.what()).find("worker 1 (" + workers.endpoints()[1] + ")"), std::string::npos)
        << error.what();
    EXPECT_LT(seconds, 5.0);
  }
  EXPECT_FALSE(cluster->ready());
  // While the worker is away, steps fail at once with the reason.
  EXPECT_THROW(cluster->run(decodeStep(before.greedy.back(), 13)), Error);

  workers.restart(1);
  ASSERT_TRUE(cluster->waitReady(std::chrono::seconds(30))) << "the cluster did not recover";
  // The restarted worker lost its KV cache: its requests failed; a new generation runs as before.
  const ScheduleResult after = runSchedule(*cluster, 4, kDefaultCandidates);
  EXPECT_EQ(after.greedy, before.greedy);
  EXPECT_EQ(after.prefillLogits, before.prefillLogits);
}

TEST(ClusterFailureTest, HungWorkerIsNoticedByTheHeartbeat) {
  const ShardPlan plan = planFor("tiny", 2, 1);
  UcxWorkers workers(2);
  auto cluster = startCluster("tiny", plan, workers.endpoints());
  const ScheduleResult before = runSchedule(*cluster, 2, kDefaultCandidates);

  kill(workers.pid(1), SIGSTOP);
  const auto start = Clock::now();
  EXPECT_THROW(cluster->run(decodeStep(before.greedy.back(), 11)), Error);
  const double seconds = secondsSince(start);
  std::printf("hung worker noticed after %.3f s\n", seconds);
  EXPECT_LT(seconds, 8.0);
  kill(workers.pid(1), SIGCONT);
  ASSERT_TRUE(cluster->waitReady(std::chrono::seconds(30))) << "the cluster did not recover";
  EXPECT_EQ(runSchedule(*cluster, 2, kDefaultCandidates).greedy, before.greedy);
}

}  // namespace
}  // namespace phx::testing
