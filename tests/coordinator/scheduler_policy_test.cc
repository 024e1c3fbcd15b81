// The scheduler's policy (admission, chunked prefill, preemption, prefix caching, the queue limit) over a stand-in
// executor, so it runs without the kernels: ContextHashExecutor's "model" writes each token into the KV slot its
// block table names and predicts the next token from a hash of the context it reads back through the table. A
// wrong block, a stale cached prefix or a skipped token changes every later prediction, so each sequence must
// get exactly the tokens the same hash gives its full context directly. The real engine's version of these tests
// is tests/serving/scheduler_test.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <random>

#include "common/error.h"
#include "coordinator/scheduler.h"
#include "tests/common/random_prompt.h"
#include "tests/common/test_files.h"

namespace phx {
namespace {

const std::filesystem::path kTiny = ::phx::testing::testModelDir("tiny");

// The next token after `context`: an FNV-1a hash into ordinary ids (no special tokens, so nothing stops early).
int32_t nextToken(std::span<const int32_t> context) {
  uint64_t hash = 1469598103934665603ull;
  for (int32_t id : context) hash = (hash ^ uint64_t(id)) * 1099511628211ull;
  return int32_t(1000 + hash % 20000);
}

class ContextHashExecutor final : public StepExecutor {
 public:
  ContextHashExecutor(int64_t blocks, int64_t blockSize, int64_t vocab)
      : blockSize_(blockSize), vocab_(vocab), slots_(size_t(blocks * blockSize), -1) {
    output_.vocabCount = vocab;
  }
  int64_t kvBlockSize() const override { return blockSize_; }
  int64_t kvBlockCount() const override { return int64_t(slots_.size()) / blockSize_; }

  const StepOutput& run(const StepBatch& batch) override {
    output_.rows = 0;
    output_.logits.clear();
    size_t token = 0;
    for (const SequenceStep& sequence : batch.sequences) {
      for (int64_t i = 0; i < sequence.newTokens; ++i)
        slot(sequence, sequence.cachedTokens + i) = batch.tokens[token++];
      if (sequence.logits == LogitsFor::kNone) continue;
      std::vector<int32_t> context;
      for (int64_t p = 0; p < sequence.contextTokens(); ++p) context.push_back(slot(sequence, p));
      output_.logits.resize(size_t((output_.rows + 1) * vocab_), 0.0f);
      output_.logits[size_t(output_.rows * vocab_ + nextToken(context))] = 1.0f;
      ++output_.rows;
    }
    ++steps;
    return output_;
  }

  int64_t steps = 0;

 private:
  int32_t& slot(const SequenceStep& sequence, int64_t position) {
    const int32_t block = sequence.blockTable.at(size_t(position / blockSize_));
    return slots_.at(size_t(block * blockSize_ + position % blockSize_));
  }

  int64_t blockSize_, vocab_;
  std::vector<int32_t> slots_;  // the "KV cache": the token written at each slot
  StepOutput output_;
};

// Answers for the first half of the vocabulary only: rows that, sampled as if whole, would give wrong ids.
class HalfVocabularyExecutor final : public StepExecutor {
 public:
  explicit HalfVocabularyExecutor(StepExecutor& inner) : inner_(inner) {}
  int64_t kvBlockSize() const override { return inner_.kvBlockSize(); }
  int64_t kvBlockCount() const override { return inner_.kvBlockCount(); }
  const StepOutput& run(const StepBatch& batch) override {
    output_ = inner_.run(batch);
    output_.vocabCount /= 2;
    output_.logits.resize(size_t(output_.rows * output_.vocabCount));
    return output_;
  }

 private:
  StepExecutor& inner_;
  StepOutput output_;
};

// A pipeline of `depth` stages as the scheduler sees one: steps are launched and run only when collected, oldest
// first. Every launched batch must stay alive and untouched until collected, and no two steps in flight may share a
// KV block (one would write what the other reads).
class PipelinedExecutor final : public StepExecutor {
 public:
  PipelinedExecutor(StepExecutor& inner, int depth) : inner_(inner), depth_(depth) {}
  int64_t kvBlockSize() const override { return inner_.kvBlockSize(); }
  int64_t kvBlockCount() const override { return inner_.kvBlockCount(); }
  int maxStepsInFlight() const override { return depth_; }
  const StepOutput& run(const StepBatch& batch) override { return inner_.run(batch); }

  void launch(const StepBatch& batch) override {
    EXPECT_LT(int(inFlight_.size()), depth_) << "more steps launched than the pipeline holds";
    for (const auto& [other, copy] : inFlight_) {
      for (const SequenceStep& a : batch.sequences) {
        for (const SequenceStep& b : other->sequences) {
          for (int32_t block : a.blockTable) {
            EXPECT_EQ(std::count(b.blockTable.begin(), b.blockTable.end(), block), 0)
                << "KV block " << block << " is in two steps in flight";
          }
        }
      }
    }
    inFlight_.push_back({&batch, batch});
    mostInFlight = std::max(mostInFlight, int(inFlight_.size()));
  }

  const StepOutput& collect() override {
    const auto [batch, copy] = inFlight_.front();
    inFlight_.pop_front();
    EXPECT_EQ(batch->tokens, copy.tokens) << "a launched batch changed before it was collected";
    return inner_.run(copy);
  }

  int mostInFlight = 0;

 private:
  StepExecutor& inner_;
  int depth_;
  std::deque<std::pair<const StepBatch*, StepBatch>> inFlight_;
};

std::vector<int32_t> expectedTokens(std::vector<int32_t> context, int32_t count) {
  std::vector<int32_t> generated;
  for (int32_t i = 0; i < count; ++i) {
    generated.push_back(nextToken(context));
    context.push_back(generated.back());
  }
  return generated;
}

using ::phx::testing::randomPrompt;

struct Outcome {
  std::vector<int32_t> ids;
  bool finished = false;
  FinishReason reason = FinishReason::kCancelled;
  int64_t cachedPromptTokens = 0;
  std::string error;  // kFailed
  ErrorKind errorKind = ErrorKind::kInternal;
};

class SchedulerPolicyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::load(kTiny)); }

  SchedulerOptions options(int64_t maxBatchTokens) const {
    SchedulerOptions o;
    o.maxBatchTokens = maxBatchTokens;
    o.maxContext = 4096;
    o.candidates = 0;  // dense logits: the stand-in's one-hot rows
    return o;
  }

  // Submits every prompt at once (greedy, `tokens` each) and steps until idle.
  std::vector<Outcome> generate(StepExecutor& executor, SchedulerOptions o,
                                const std::vector<std::vector<int32_t>>& prompts, int32_t tokens,
                                SchedulerStats* stats = nullptr) {
    Scheduler scheduler(executor, *tokenizer_, o);
    std::vector<Outcome> outcomes(prompts.size());
    std::vector<SequenceRequest> requests;
    std::vector<SequenceSink> sinks;
    for (size_t i = 0; i < prompts.size(); ++i) {
      SamplingParams greedy;
      greedy.temperature = 0;
      greedy.maxTokens = tokens;
      requests.push_back({prompts[i], greedy});
      sinks.push_back([&out = outcomes[i]](SequenceEvent&& event) {
        if (event.kind == SequenceEvent::Kind::kToken) out.ids.push_back(event.token.id);
        if (event.kind == SequenceEvent::Kind::kFinished) {
          out.finished = true;
          out.reason = event.finishReason;
          out.cachedPromptTokens = event.cachedPromptTokens;
        }
        if (event.kind == SequenceEvent::Kind::kFailed) {
          out.error = event.error;
          out.errorKind = event.errorKind;
        }
      });
    }
    scheduler.submit(std::move(requests), std::move(sinks));
    int steps = 0;
    while (scheduler.step() && ++steps < 100000) {
    }
    EXPECT_LT(steps, 100000) << "the scheduler never went idle";
    if (stats) *stats = scheduler.stats();
    return outcomes;
  }

  // Four sequences of up to 60 tokens on `executor`'s short pool (96 slots): preempted, they still get the tokens
  // of their whole context.
  void expectPreemptionKeepsTheTokens(StepExecutor& executor) {
    std::vector<std::vector<int32_t>> prompts;
    for (int i = 0; i < 4; ++i) prompts.push_back(randomPrompt(20 + 5 * i, uint64_t(100 + i)));
    SchedulerOptions o = options(64);
    o.prefixCaching = false;
    SchedulerStats stats;
    const auto outcomes = generate(executor, o, prompts, 30, &stats);
    EXPECT_GT(stats.preemptions, 0) << "the pool was meant to run short";
    for (size_t i = 0; i < prompts.size(); ++i) {
      EXPECT_EQ(outcomes[i].ids, expectedTokens(prompts[i], 30)) << "sequence " << i;
    }
  }

  static std::unique_ptr<Tokenizer> tokenizer_;
};
std::unique_ptr<Tokenizer> SchedulerPolicyTest::tokenizer_;

TEST_F(SchedulerPolicyTest, BatchedChunkedSequencesGetTheTokensOfTheirWholeContext) {
  ContextHashExecutor executor(256, 16, tokenizer_->vocabSize());
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 6; ++i) prompts.push_back(randomPrompt(5 + 23 * i, uint64_t(i)));
  SchedulerStats stats;
  const auto outcomes = generate(executor, options(32), prompts, 12, &stats);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_TRUE(outcomes[i].finished);
    EXPECT_EQ(outcomes[i].reason, FinishReason::kLength);
    EXPECT_EQ(outcomes[i].ids, expectedTokens(prompts[i], 12)) << "sequence " << i;
  }
  EXPECT_EQ(stats.generatedTokens, 6 * 12);
  EXPECT_EQ(stats.running, 0);
  EXPECT_EQ(stats.waiting, 0);
  EXPECT_EQ(stats.kvBlocksActive, 0) << "every sequence's blocks are freed";
}

TEST_F(SchedulerPolicyTest, PreemptionUnderAShortPoolStillGivesTheSameTokens) {
  ContextHashExecutor executor(12, 8, tokenizer_->vocabSize());  // 96 slots for four sequences of up to 60
  expectPreemptionKeepsTheTokens(executor);
}

TEST_F(SchedulerPolicyTest, PipelinedLanesKeepTwoStepsInFlightWithTheSameTokens) {
  ContextHashExecutor inner(256, 16, tokenizer_->vocabSize());
  PipelinedExecutor executor(inner, 2);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 6; ++i) prompts.push_back(randomPrompt(5 + 23 * i, uint64_t(i)));
  SchedulerStats stats;
  const auto outcomes = generate(executor, options(32), prompts, 12, &stats);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_TRUE(outcomes[i].finished);
    EXPECT_EQ(outcomes[i].ids, expectedTokens(prompts[i], 12)) << "sequence " << i;
  }
  EXPECT_EQ(executor.mostInFlight, 2) << "the lanes never overlapped";
  EXPECT_EQ(stats.kvBlocksActive, 0) << "every sequence's blocks are freed";
}

TEST_F(SchedulerPolicyTest, PipelinedPreemptionWaitsForTheStepsInFlightAndKeepsTheTokens) {
  ContextHashExecutor inner(12, 8, tokenizer_->vocabSize());
  PipelinedExecutor executor(inner, 2);
  expectPreemptionKeepsTheTokens(executor);
  EXPECT_EQ(executor.mostInFlight, 2);
}

TEST_F(SchedulerPolicyTest, ASharedPrefixIsReadFromTheCacheWithTheSameTokens) {
  ContextHashExecutor executor(256, 16, tokenizer_->vocabSize());
  const std::vector<int32_t> system = randomPrompt(64, 7);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 3; ++i) {
    std::vector<int32_t> prompt = system;
    for (int32_t id : randomPrompt(9, uint64_t(20 + i))) prompt.push_back(id);
    prompts.push_back(prompt);
  }
  SchedulerOptions o = options(16);
  o.maxRunning = 1;  // each admitted after the one before has cached its blocks
  SchedulerStats stats;
  const auto outcomes = generate(executor, o, prompts, 8, &stats);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(outcomes[i].ids, expectedTokens(prompts[i], 8)) << "sequence " << i;
  }
  EXPECT_GT(stats.prefixHitTokens, 0) << "later sequences reuse the first one's system-prompt blocks";
}

TEST_F(SchedulerPolicyTest, LogitsOverPartOfTheVocabularyFailTheStepInsteadOfBeingSampled) {
  ContextHashExecutor inner(64, 16, tokenizer_->vocabSize());
  HalfVocabularyExecutor executor(inner);
  const auto outcomes = generate(executor, options(64), {randomPrompt(10, 3)}, 4);
  EXPECT_TRUE(outcomes[0].ids.empty()) << "a token was sampled from a partial row";
  EXPECT_FALSE(outcomes[0].finished);
  EXPECT_EQ(outcomes[0].errorKind, ErrorKind::kInternal);
  EXPECT_NE(outcomes[0].error.find("whole " + std::to_string(tokenizer_->vocabSize()) + "-token vocabulary"),
            std::string::npos)
      << outcomes[0].error;
}

TEST_F(SchedulerPolicyTest, TheQueueLimitCountsWhatWaits) {
  ContextHashExecutor executor(64, 16, tokenizer_->vocabSize());
  SchedulerOptions o = options(64);
  o.maxWaiting = 2;
  o.maxRunning = 1;
  Scheduler scheduler(executor, *tokenizer_, o);
  SamplingParams greedy;
  greedy.temperature = 0;
  greedy.maxTokens = 2;
  const auto ignore = [](SequenceEvent&&) {};
  scheduler.submit({{randomPrompt(4, 1), greedy}, {randomPrompt(4, 2), greedy}}, {ignore, ignore});
  EXPECT_THROW(scheduler.submit({{randomPrompt(4, 3), greedy}}, {ignore}), Error) << "two already wait";
  ASSERT_TRUE(scheduler.step());  // admits one (maxRunning 1): one waits
  EXPECT_EQ(scheduler.stats().waiting, 1);
  scheduler.submit({{randomPrompt(4, 4), greedy}}, {ignore});
  EXPECT_THROW(scheduler.submit({{randomPrompt(4, 5), greedy}}, {ignore}), Error) << "two wait again";
  while (scheduler.step()) {
  }
  EXPECT_EQ(scheduler.stats().sequencesFinished, 3);
}

}  // namespace
}  // namespace phx
