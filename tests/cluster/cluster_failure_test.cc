// Failures of real worker processes: a worker killed mid-generation makes the next step throw a clear error
// naming it within a few seconds (never a hang); restarted at the same address, it is reconnected, reloaded and
// rejoined by the executor in the background, and service resumes with the same results, without restarting the
// coordinator. A stopped (hung) worker is noticed by the heartbeat. A pipeline stage waits for its neighbour as long
// as the neighbour computes (not the all-reduce timeout), yet a rejoin frees it at once.
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

// Stage 1 waits for stage 0's whole share of a prefill: far longer than an all-reduce may wait for its group.
TEST(ClusterFailureTest, PipelineHandOffWaitsForALongStageBeyondTheAllReduceTimeout) {
  UcxWorkers workers(2);
  ClusterExecutorOptions options = clusterOptions("small", workers.endpoints());
  options.plan = planFor("small", 1, 2);
  options.dataPlaneTimeout = std::chrono::milliseconds(1);
  auto cluster = ClusterExecutor::start(options);
  const ScheduleResult pipelined = runSchedule(*cluster, 3, kDefaultCandidates);
  EXPECT_EQ(pipelined.greedy, runSchedule(localEngine("small").runner(), 3, 0).greedy);
}

// Stage 0 hangs, then dies, while stage 1 waits on its hand-off (a wait that may last a whole step): the restarted
// stage's rejoin interrupts that wait, so the cluster is back in seconds rather than after the hand-off timeout.
TEST(ClusterFailureTest, KilledFirstStageIsRejoinedWithoutWaitingOutTheHandOff) {
  UcxWorkers workers(2);
  ClusterExecutorOptions options = clusterOptions("tiny", workers.endpoints());
  options.plan = planFor("tiny", 1, 2);
  options.stepTimeout = std::chrono::milliseconds(600000);  // the hand-off's own timeout: far past the test's
  auto cluster = ClusterExecutor::start(options);
  const ScheduleResult before = runSchedule(*cluster, 2, kDefaultCandidates);

  // Stopped, stage 0 takes the step without computing it; stage 1 computes its part and waits for the hand-off.
  kill(workers.pid(0), SIGSTOP);
  EXPECT_THROW(cluster->run(decodeStep(before.greedy.back(), 11)), Error);  // the heartbeat gives up on stage 0
  workers.kill(0);
  workers.restart(0);
  const auto start = Clock::now();
  ASSERT_TRUE(cluster->waitReady(std::chrono::seconds(60))) << "the cluster did not recover";
  std::printf("pipeline rejoined %.3f s after the first stage restarted\n", secondsSince(start));
  EXPECT_EQ(runSchedule(*cluster, 2, kDefaultCandidates).greedy, before.greedy);
}

}  // namespace
}  // namespace phx::testing
