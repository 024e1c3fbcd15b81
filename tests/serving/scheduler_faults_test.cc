// The scheduler's fault handling on the real single-process engine (tiny model) behind a decorator that fails
// steps the way a cluster does: a step that throws kDisconnected, an executor that is not ready for a while, a KV
// epoch that moves on. Every sequence must be replayed and end with exactly the tokens it gets without the fault
// (greedy and seeded sampling alike); past the recovery timeout they fail with kDisconnected. Also: a request whose
// top_k exceeds the batch's candidates widens its own rows only.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "common/error.h"
#include "coordinator/scheduler.h"
#include "tests/common/test_files.h"
#include "worker/local_engine.h"

namespace phx {
namespace {

const std::filesystem::path kTiny = ::phx::testing::testModelDir("tiny");

// Runs steps on `inner` unless told to fail; records the batches it ran.
class FaultyExecutor final : public StepExecutor {
 public:
  explicit FaultyExecutor(StepExecutor& inner) : inner_(inner) {}
  int64_t kvBlockSize() const override { return inner_.kvBlockSize(); }
  int64_t kvBlockCount() const override { return inner_.kvBlockCount(); }
  bool ready() const override { return unreadySteps_ == 0; }
  uint64_t kvEpoch() const override { return epoch_; }
  const StepOutput& run(const StepBatch& batch) override {
    if (failAt_ == ++steps_) {
      goDown();
      throw Error(ErrorKind::kDisconnected, "worker 1 (test) disconnected");
    }
    batches.push_back(batch);
    const StepOutput& output = inner_.run(batch);
    if (downAfter_ == steps_) goDown();  // a worker dies between two steps: no step fails, ready() turns false
    return output;
  }
  // The scheduler polls ready() once per step while recovering: count those polls down. As a cluster does, the
  // executor comes back with a new KV epoch (fresh workers).
  void tick() {
    if (unreadySteps_ > 0 && --unreadySteps_ == 0) ++epoch_;
  }
  void failStep(int64_t step, int unready) {
    failAt_ = step;
    unreadyAfterFailure_ = unready;
  }
  void goDownAfter(int64_t step, int unready) {
    downAfter_ = step;
    unreadyAfterFailure_ = unready;
  }
  void bumpEpoch() { ++epoch_; }
  void stayUnready() { unreadySteps_ = 1 << 30; }
  std::vector<StepBatch> batches;

 private:
  void goDown() { unreadySteps_ = unreadyAfterFailure_; }
  StepExecutor& inner_;
  int64_t steps_ = 0;
  int64_t failAt_ = -1;
  int64_t downAfter_ = -1;
  int unreadyAfterFailure_ = 0;
  int unreadySteps_ = 0;
  uint64_t epoch_ = 1;
};

struct Outcome {
  std::vector<int32_t> ids;
  bool finished = false;
  bool failed = false;
  std::string error;
};

SequenceSink sinkFor(Outcome& out) {
  return [&out](SequenceEvent&& event) {
    if (event.kind == SequenceEvent::Kind::kToken) out.ids.push_back(event.token.id);
    if (event.kind == SequenceEvent::Kind::kFinished) out.finished = true;
    if (event.kind == SequenceEvent::Kind::kFailed) {
      out.failed = true;
      out.error = event.error;
    }
  };
}

SamplingParams sampling(bool seeded, int32_t maxTokens) {
  SamplingParams p;
  p.maxTokens = maxTokens;
  p.temperature = seeded ? 0.9f : 0.0f;
  if (seeded) p.seed = 1234;
  return p;
}

class SchedulerFaultsTest : public ::testing::Test {
 protected:
  SchedulerFaultsTest() : tokenizer_(Tokenizer::load(kTiny)) {
    LocalEngineOptions options;
    options.kvTokens = 2048;
    options.threads = 1;
    engine_ = LocalEngine::open(kTiny, options);
  }

  SchedulerOptions options() const {
    SchedulerOptions o;
    o.maxBatchTokens = 32;  // prompts go in chunks: a fault can land mid-prefill
    o.maxContext = engine_->config().maxPositionEmbeddings;
    return o;
  }

  // Runs four sequences (two greedy, two seeded) to the end; `fault` configures the executor first.
  std::vector<Outcome> run(const std::function<void(FaultyExecutor&)>& fault, SchedulerOptions o, int64_t* replays) {
    FaultyExecutor executor(engine_->runner());
    fault(executor);
    Scheduler scheduler(executor, tokenizer_, o);
    std::vector<Outcome> out(4);
    for (size_t i = 0; i < out.size(); ++i) {
      std::vector<int32_t> prompt(20 + 15 * i);
      std::mt19937 rng(static_cast<unsigned>(i));
      for (int32_t& id : prompt) id = int32_t(1000 + rng() % 50000);
      scheduler.submit({{prompt, sampling(i % 2 == 1, 24), 77 + i}}, {sinkFor(out[i])});
    }
    for (int i = 0; i < 100000 && scheduler.step(); ++i) executor.tick();
    if (replays) *replays = scheduler.stats().replays;
    return out;
  }

  Tokenizer tokenizer_;
  std::unique_ptr<LocalEngine> engine_;
};

TEST_F(SchedulerFaultsTest, ADisconnectedStepIsReplayedWithTheFaultFreeTokens) {
  const auto clean = run([](FaultyExecutor&) {}, options(), nullptr);
  for (int64_t failAt : {2, 5, 12}) {  // mid-prefill, at the first tokens, mid-decode
    SCOPED_TRACE("fault at step " + std::to_string(failAt));
    int64_t replays = 0;
    const auto faulted = run([failAt](FaultyExecutor& e) { e.failStep(failAt, 25); }, options(), &replays);
    EXPECT_GT(replays, 0);
    for (size_t i = 0; i < clean.size(); ++i) {
      EXPECT_TRUE(faulted[i].finished) << faulted[i].error;
      EXPECT_EQ(faulted[i].ids, clean[i].ids) << "sequence " << i;
    }
  }
}

// The soak found this one: a worker lost between steps (no step failed) left the running sequences parked for ever.
TEST_F(SchedulerFaultsTest, AClusterLostBetweenStepsStillReplaysEverySequence) {
  const auto clean = run([](FaultyExecutor&) {}, options(), nullptr);
  int64_t replays = 0;
  const auto faulted = run([](FaultyExecutor& e) { e.goDownAfter(8, 25); }, options(), &replays);
  EXPECT_GT(replays, 0);
  for (size_t i = 0; i < clean.size(); ++i) {
    EXPECT_TRUE(faulted[i].finished) << "sequence " << i << " was left hanging";
    EXPECT_EQ(faulted[i].ids, clean[i].ids) << "sequence " << i;
  }
}

TEST_F(SchedulerFaultsTest, AnEpochChangeBetweenStepsForgetsTheKvAndReplays) {
  const auto clean = run([](FaultyExecutor&) {}, options(), nullptr);
  FaultyExecutor executor(engine_->runner());
  Scheduler scheduler(executor, tokenizer_, options());
  std::vector<Outcome> out(2);
  std::vector<int32_t> prompt(40, 4242);
  scheduler.submit({{prompt, sampling(false, 16), 1}}, {sinkFor(out[0])});
  for (int i = 0; i < 100 && scheduler.step(); ++i) {
  }
  // The same prompt again after a "restart": none of its blocks may come from the prefix cache.
  executor.bumpEpoch();
  scheduler.submit({{prompt, sampling(false, 16), 1}}, {sinkFor(out[1])});
  for (int i = 0; i < 100 && scheduler.step(); ++i) {
  }
  EXPECT_EQ(out[1].ids, out[0].ids);
  EXPECT_EQ(scheduler.stats().kvInvalidations, 1);
  EXPECT_EQ(scheduler.stats().prefixHitTokens, 0) << "blocks from before the epoch change were reused";
  // Without an epoch change the same prompt does hit the cache: the zero above was the epoch's doing.
  Outcome third;
  scheduler.submit({{prompt, sampling(false, 16), 1}}, {sinkFor(third)});
  for (int i = 0; i < 100 && scheduler.step(); ++i) {
  }
  EXPECT_EQ(third.ids, out[0].ids);
  EXPECT_EQ(scheduler.stats().prefixHitTokens, 32);  // two full blocks of 16; the last token is always computed
}

TEST_F(SchedulerFaultsTest, PastTheRecoveryTimeoutEverySequenceFailsAsDisconnected) {
  SchedulerOptions o = options();
  o.recoveryTimeout = std::chrono::milliseconds(200);
  const auto start = std::chrono::steady_clock::now();
  const auto faulted = run([](FaultyExecutor& e) { e.failStep(4, 1 << 30); }, o, nullptr);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  for (const Outcome& outcome : faulted) {
    EXPECT_TRUE(outcome.failed);
    EXPECT_NE(outcome.error.find("did not recover within 0.2"), std::string::npos) << outcome.error;
    EXPECT_NE(outcome.error.find("worker 1 (test) disconnected"), std::string::npos) << outcome.error;
  }
}

TEST_F(SchedulerFaultsTest, ALargeTopKWidensOnlyItsOwnRows) {
  FaultyExecutor executor(engine_->runner());
  Scheduler scheduler(executor, tokenizer_, options());
  Outcome wide, narrow;
  SamplingParams many = sampling(true, 3);
  many.topK = 1000;
  scheduler.submit({{std::vector<int32_t>(5, 1000), many, 1}}, {sinkFor(wide)});
  scheduler.submit({{std::vector<int32_t>(5, 2000), sampling(true, 3), 2}}, {sinkFor(narrow)});
  for (int i = 0; i < 100 && scheduler.step(); ++i) {
  }
  ASSERT_TRUE(wide.finished && narrow.finished);
  const StepBatch& last = executor.batches.back();
  ASSERT_EQ(last.sequences.size(), 2u);
  EXPECT_EQ(last.candidates, kDefaultCandidates);
  EXPECT_EQ(last.sequences[0].candidates, 1000);
  EXPECT_EQ(last.sequences[1].candidates, 0);
}

}  // namespace
}  // namespace phx
