// The continuous-batching scheduler on the real single-process engine (tiny model): batched, chunked, preempted
// and prefix-cached runs must give each sequence exactly the greedy tokens it gets alone (coordinator/generate).
#include "coordinator/scheduler.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "common/error.h"
#include "tests/common/random_prompt.h"
#include "tests/common/test_files.h"
#include "worker/local_engine.h"

namespace phx {
namespace {

const std::filesystem::path kTiny = ::phx::testing::testModelDir("tiny");

struct Collected {
  std::vector<int32_t> ids;
  std::string text;
  bool finished = false;
  bool failed = false;
  FinishReason reason = FinishReason::kCancelled;
  int64_t cachedPromptTokens = 0;
};

SequenceSink sinkFor(Collected& out) {
  return [&out](SequenceEvent&& event) {
    out.text += event.text;
    if (event.kind == SequenceEvent::Kind::kToken) out.ids.push_back(event.token.id);
    if (event.kind == SequenceEvent::Kind::kFinished) {
      out.finished = true;
      out.reason = event.finishReason;
      out.cachedPromptTokens = event.cachedPromptTokens;
    }
    if (event.kind == SequenceEvent::Kind::kFailed) out.failed = true;
  };
}

using ::phx::testing::randomPrompt;

SamplingParams greedy(int32_t maxTokens) {
  SamplingParams p;
  p.temperature = 0;
  p.maxTokens = maxTokens;
  return p;
}

class SchedulerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::load(kTiny));
    LocalEngineOptions options;
    options.kvTokens = 4096;
    options.threads = 1;
    reference_ = LocalEngine::open(kTiny, options);
  }
  static void TearDownTestSuite() {
    reference_.reset();
    tokenizer_.reset();
  }

  // The tokens generate() gives the prompt alone.
  static std::vector<int32_t> alone(const std::vector<int32_t>& prompt, int32_t maxTokens) {
    BlockAllocator blocks(reference_->cache().shape().numBlocks, reference_->cache().shape().blockSize);
    GenerationRequest request;
    request.promptTokens = prompt;
    request.params = greedy(maxTokens);
    request.maxContext = reference_->config().maxPositionEmbeddings;
    const GenerationResult result = generate(reference_->runner(), blocks, *tokenizer_, request, [](auto) {});
    std::vector<int32_t> ids;
    for (const SampledToken& token : result.tokens) ids.push_back(token.id);
    return ids;
  }

  static std::unique_ptr<LocalEngine> engine(int64_t kvTokens, int64_t maxStepTokens) {
    LocalEngineOptions options;
    options.kvTokens = kvTokens;
    options.maxStepTokens = maxStepTokens;
    options.threads = 1;
    return LocalEngine::open(kTiny, options);
  }

  SchedulerOptions options(int64_t maxBatchTokens) const {
    SchedulerOptions o;
    o.maxBatchTokens = maxBatchTokens;
    o.maxContext = reference_->config().maxPositionEmbeddings;
    return o;
  }

  static void runToIdle(Scheduler& scheduler) {
    for (int i = 0; i < 100000 && scheduler.step(); ++i) {
    }
  }

  static std::unique_ptr<Tokenizer> tokenizer_;
  static std::unique_ptr<LocalEngine> reference_;
};

std::unique_ptr<Tokenizer> SchedulerTest::tokenizer_;
std::unique_ptr<LocalEngine> SchedulerTest::reference_;

TEST_F(SchedulerTest, ContinuousBatchingWithChunkedPrefillMatchesEachSequenceAlone) {
  const auto local = engine(4096, 24);
  Scheduler scheduler(local->runner(), *tokenizer_, options(24));  // 24 tokens a step: prompts go in chunks
  const std::vector<std::pair<int64_t, int32_t>> shapes = {{5, 12}, {40, 20}, {70, 8}, {3, 16}};
  std::vector<Collected> out(shapes.size());
  for (size_t i = 0; i < 2; ++i) {
    scheduler.submit({{randomPrompt(shapes[i].first, i), greedy(shapes[i].second)}}, {sinkFor(out[i])});
  }
  for (int s = 0; s < 3; ++s) scheduler.step();  // the later two join a batch already running
  for (size_t i = 2; i < shapes.size(); ++i) {
    scheduler.submit({{randomPrompt(shapes[i].first, i), greedy(shapes[i].second)}}, {sinkFor(out[i])});
  }
  runToIdle(scheduler);
  for (size_t i = 0; i < shapes.size(); ++i) {
    SCOPED_TRACE("sequence " + std::to_string(i));
    ASSERT_TRUE(out[i].finished);
    EXPECT_EQ(out[i].reason, FinishReason::kLength);
    EXPECT_EQ(out[i].ids, alone(randomPrompt(shapes[i].first, i), shapes[i].second));
  }
  const SchedulerStats stats = scheduler.stats();
  EXPECT_EQ(stats.sequencesFinished, 4);
  EXPECT_EQ(stats.kvBlocksActive, 0);
  EXPECT_EQ(stats.running + stats.waiting, 0);
}

TEST_F(SchedulerTest, PreemptsWhenTheCacheRunsShortAndStillMatches) {
  const auto local = engine(128, 64);  // 8 blocks of 16: three sequences of 70 tokens cannot all fit
  SchedulerOptions o = options(64);
  o.prefixCaching = false;
  Scheduler scheduler(local->runner(), *tokenizer_, o);
  std::vector<Collected> out(3);
  for (size_t i = 0; i < out.size(); ++i) {
    scheduler.submit({{randomPrompt(30, 10 + i), greedy(40)}}, {sinkFor(out[i])});
  }
  runToIdle(scheduler);
  for (size_t i = 0; i < out.size(); ++i) {
    SCOPED_TRACE("sequence " + std::to_string(i));
    ASSERT_TRUE(out[i].finished);
    EXPECT_EQ(out[i].ids, alone(randomPrompt(30, 10 + i), 40));
  }
  EXPECT_GT(scheduler.stats().preemptions, 0);
  EXPECT_EQ(scheduler.stats().kvBlocksUsed, 0);
}

TEST_F(SchedulerTest, OneSequenceLargerThanTheCacheEndsWithLength) {
  const auto local = engine(64, 64);  // 4 blocks of 16
  Scheduler scheduler(local->runner(), *tokenizer_, options(64));
  Collected out;
  scheduler.submit({{randomPrompt(40, 3), greedy(100)}}, {sinkFor(out)});
  runToIdle(scheduler);
  ASSERT_TRUE(out.finished);
  EXPECT_EQ(out.reason, FinishReason::kLength);
  EXPECT_EQ(int64_t(out.ids.size()), 64 - 40 + 1);  // the last token is sampled but never needs a slot
  EXPECT_EQ(out.ids, alone(randomPrompt(40, 3), int32_t(out.ids.size())));
}

TEST_F(SchedulerTest, PrefixCacheSkipsPrefillAndGivesTheSameTokens) {
  const auto local = engine(4096, 64);
  Scheduler scheduler(local->runner(), *tokenizer_, options(64));
  const auto prompt = randomPrompt(50, 7);
  Collected cold, warm, shared;
  scheduler.submit({{prompt, greedy(10)}}, {sinkFor(cold)});
  runToIdle(scheduler);
  scheduler.submit({{prompt, greedy(10)}}, {sinkFor(warm)});
  runToIdle(scheduler);
  auto sibling = prompt;
  sibling.resize(40);
  sibling.push_back(5);
  scheduler.submit({{sibling, greedy(10)}}, {sinkFor(shared)});
  runToIdle(scheduler);
  EXPECT_EQ(cold.cachedPromptTokens, 0);
  EXPECT_EQ(warm.cachedPromptTokens, 48);  // three full blocks; the last token is always computed
  EXPECT_EQ(shared.cachedPromptTokens, 32);
  EXPECT_EQ(warm.ids, cold.ids);
  EXPECT_EQ(cold.ids, alone(prompt, 10));
  EXPECT_EQ(shared.ids, alone(sibling, 10));
  EXPECT_EQ(scheduler.stats().prefixHitTokens, 80);
  EXPECT_EQ(scheduler.stats().kvBlocksActive, 0);
  EXPECT_GT(scheduler.stats().kvBlocksCached, 0);
}

TEST_F(SchedulerTest, CancellingFreesBlocksAtTheNextStep) {
  const auto local = engine(4096, 64);
  Scheduler scheduler(local->runner(), *tokenizer_, options(64));
  Collected out;
  const auto ids = scheduler.submit({{randomPrompt(20, 1), greedy(1000)}}, {sinkFor(out)});
  for (int s = 0; s < 4; ++s) scheduler.step();
  EXPECT_GT(scheduler.stats().kvBlocksActive, 0);
  scheduler.cancel(ids[0]);
  scheduler.step();
  EXPECT_EQ(scheduler.stats().kvBlocksActive, 0);
  EXPECT_EQ(scheduler.stats().sequencesCancelled, 1);
  EXPECT_FALSE(out.finished);
  EXPECT_FALSE(scheduler.step());
}

TEST_F(SchedulerTest, RefusesWhatCanNeverRunAndAFullQueue) {
  const auto local = engine(64, 64);
  SchedulerOptions o = options(64);
  o.maxWaiting = 2;
  Scheduler scheduler(local->runner(), *tokenizer_, o);
  Collected a, b, c;
  try {
    scheduler.submit({{randomPrompt(64, 1), greedy(4)}}, {sinkFor(a)});
    FAIL() << "a prompt filling the whole KV pool was accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(error.what()).find("KV cache holds 64 tokens"), std::string::npos) << error.what();
  }
  EXPECT_THROW(scheduler.submit({{{}, greedy(4)}}, {sinkFor(a)}), Error);
  EXPECT_THROW(scheduler.submit({{{1, 2, 200000}, greedy(4)}}, {sinkFor(a)}), Error);
  scheduler.submit({{randomPrompt(4, 1), greedy(4)}, {randomPrompt(4, 2), greedy(4)}}, {sinkFor(a), sinkFor(b)});
  try {
    scheduler.submit({{randomPrompt(4, 3), greedy(4)}}, {sinkFor(c)});
    FAIL() << "a third sequence was queued behind a limit of 2";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kOverloaded);
  }
  runToIdle(scheduler);
  EXPECT_TRUE(a.finished && b.finished);
  EXPECT_FALSE(c.finished);
}

TEST_F(SchedulerTest, RunsOnItsOwnThreadAndFailsWhatIsLeftWhenStopped) {
  const auto local = engine(4096, 64);
  Scheduler scheduler(local->runner(), *tokenizer_, options(64));
  std::mutex mutex;
  std::condition_variable done;
  Collected quick, endless;
  std::jthread thread([&scheduler](std::stop_token stop) { scheduler.run(stop); });
  auto locked = [&](Collected& out) {
    return [&, sink = sinkFor(out)](SequenceEvent&& event) {
      std::lock_guard lock(mutex);
      sink(std::move(event));
      done.notify_all();
    };
  };
  scheduler.submit({{randomPrompt(8, 1), greedy(5)}}, {locked(quick)});
  SamplingParams forever = greedy(100000);
  scheduler.submit({{randomPrompt(8, 2), forever}}, {locked(endless)});
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(done.wait_for(lock, std::chrono::seconds(30), [&] { return quick.finished; }));
  }
  EXPECT_EQ(quick.ids, alone(randomPrompt(8, 1), 5));
  thread.request_stop();
  thread.join();
  EXPECT_TRUE(endless.failed);
  EXPECT_EQ(scheduler.stats().kvBlocksActive, 0);
}

}  // namespace
}  // namespace phx
