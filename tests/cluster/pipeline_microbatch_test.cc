// Pipeline micro-batching end to end: the scheduler over a real cluster of PP 2 keeps a step per stage in flight,
// each over its own lane of requests, and every request gets the greedy tokens the whole model in this process
// gives it, as it does with one batch walking the stages (--micro-batches 1). The policy over a stand-in
// executor (no two steps in flight share a KV block, preemption waits): tests/coordinator/scheduler_policy_test.cc.
#include <gtest/gtest.h>

#include "coordinator/scheduler.h"
#include "model/tokenizer.h"
#include "tests/cluster/cluster_harness.h"
#include "tests/cluster/worker_processes.h"
#include "tests/common/random_prompt.h"

namespace phx::testing {
namespace {

constexpr int kRequests = 6;
constexpr int32_t kTokens = 10;

struct Generated {
  std::vector<std::vector<int32_t>> tokens;  // by request
  SchedulerStats stats;
};

// Every request at once, greedy, stepped until idle.
Generated generateAll(StepExecutor& executor, const std::string& preset, int microBatches) {
  static const Tokenizer tokenizer = Tokenizer::load(modelPath(preset));
  SchedulerOptions options;
  options.maxBatchTokens = 64;  // the harness's step size: prompts take a few steps
  options.maxContext = 4096;
  options.microBatches = microBatches;
  Scheduler scheduler(executor, tokenizer, options);
  Generated out;
  out.tokens.resize(kRequests);
  std::vector<SequenceRequest> requests;
  std::vector<SequenceSink> sinks;
  for (int r = 0; r < kRequests; ++r) {
    SamplingParams greedy;
    greedy.temperature = 0;
    greedy.maxTokens = kTokens;
    requests.push_back({randomPrompt(6 + 3 * r, uint64_t(40 + r)), greedy});
    sinks.push_back([&ids = out.tokens[size_t(r)]](SequenceEvent&& event) {
      if (event.kind == SequenceEvent::Kind::kToken) ids.push_back(event.token.id);
    });
  }
  scheduler.submit(std::move(requests), std::move(sinks));
  while (scheduler.step()) {
  }
  out.stats = scheduler.stats();
  return out;
}

TEST(PipelineMicroBatchTest, TwoStagesWorkingAtOnceGiveEveryRequestTheLocalGreedyTokens) {
  UcxWorkers workers(2);
  auto cluster = startCluster("small", planFor("small", 1, 2), workers.endpoints());
  ASSERT_EQ(cluster->maxStepsInFlight(), 2);
  const Generated local = generateAll(localEngine("small").runner(), "small", 0);
  const Generated pipelined = generateAll(*cluster, "small", 0);
  const Generated walking = generateAll(*cluster, "small", 1);
  EXPECT_EQ(local.stats.microBatches, 1);
  EXPECT_EQ(pipelined.stats.microBatches, 2);
  EXPECT_EQ(walking.stats.microBatches, 1);
  for (int r = 0; r < kRequests; ++r) {
    ASSERT_EQ(local.tokens[size_t(r)].size(), size_t(kTokens)) << "request " << r;
    EXPECT_EQ(pipelined.tokens[size_t(r)], local.tokens[size_t(r)]) << "request " << r;
    EXPECT_EQ(walking.tokens[size_t(r)], local.tokens[size_t(r)]) << "request " << r;
  }
  EXPECT_EQ(pipelined.stats.kvBlocksActive, 0) << "every request's blocks are freed";
}

}  // namespace
}  // namespace phx::testing
