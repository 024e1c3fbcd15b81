// The generate loop against a scripted executor (no model): prefill chunking, block tables, the stop conditions,
// cancellation and streaming. The tokenizer is the tiny checkpoint's (Phi-4's real one).
#include "coordinator/generation.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "tests/common/test_files.h"

namespace phx {
namespace {

const std::filesystem::path kTiny = ::phx::testing::testModelDir("tiny");
constexpr int64_t kVocab = 100352;

// Always predicts `script[i]` at the i-th decode position (after the prompt), recording every step it runs.
class ScriptedExecutor final : public StepExecutor {
 public:
  explicit ScriptedExecutor(std::vector<int32_t> script, int64_t blocks = 64) : script_(std::move(script)),
                                                                                blocks_(blocks) {}
  int64_t kvBlockSize() const override { return 4; }
  int64_t kvBlockCount() const override { return blocks_; }
  const StepOutput& run(const StepBatch& batch) override {
    steps.push_back(batch);
    const SequenceStep& s = batch.sequences.at(0);
    EXPECT_GE(int64_t(s.blockTable.size()) * 4, s.contextTokens()) << "block table too short";
    output_ = {0, kVocab, s.logits == LogitsFor::kNone ? 0 : 1, {}};
    if (output_.rows == 1) {
      output_.logits.assign(size_t(kVocab), 0.0f);
      output_.logits[size_t(script_.at(decodeIndex_++))] = 10.0f;
    }
    return output_;
  }
  std::vector<StepBatch> steps;

 private:
  std::vector<int32_t> script_;
  int64_t blocks_;
  size_t decodeIndex_ = 0;
  StepOutput output_;
};

GenerationRequest request(int64_t promptLength, int32_t maxTokens) {
  GenerationRequest r;
  for (int64_t i = 0; i < promptLength; ++i) r.promptTokens.push_back(int32_t(1000 + i));
  r.params.temperature = 0;
  r.params.maxTokens = maxTokens;
  r.params.stopTokenIds = {100265, 100257};
  r.prefillChunk = 4;
  r.maxContext = 1000;
  return r;
}

class GenerationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tokenizer_ = new Tokenizer(Tokenizer::load(kTiny)); }
  static void TearDownTestSuite() { delete tokenizer_; }
  static Tokenizer* tokenizer_;
};
Tokenizer* GenerationTest::tokenizer_ = nullptr;

TEST_F(GenerationTest, PrefillsInChunksThenDecodesOneTokenAStep) {
  const std::vector<int32_t> hello = tokenizer_->encode(" hello world again");
  ScriptedExecutor executor(hello);
  BlockAllocator blocks(64, 4);
  std::string streamed;
  const GenerationResult result = generate(executor, blocks, *tokenizer_, request(10, int32_t(hello.size())),
                                           [&](std::string_view text) { streamed += text; });
  ASSERT_EQ(executor.steps.size(), 3u + hello.size() - 1);  // chunks of 4, 4, 2, then one per token
  EXPECT_EQ(executor.steps[0].sequences[0].newTokens, 4);
  EXPECT_EQ(executor.steps[0].sequences[0].logits, LogitsFor::kNone);
  EXPECT_EQ(executor.steps[2].sequences[0].cachedTokens, 8);
  EXPECT_EQ(executor.steps[2].sequences[0].logits, LogitsFor::kLast);
  EXPECT_EQ(executor.steps[3].tokens, std::vector<int32_t>{hello[0]});
  EXPECT_EQ(executor.steps[3].sequences[0].cachedTokens, 10);
  EXPECT_EQ(result.finishReason, FinishReason::kLength);
  EXPECT_EQ(result.text, " hello world again");
  EXPECT_EQ(streamed, result.text);
  EXPECT_EQ(blocks.freeBlocks(), 64) << "blocks not given back";
}

TEST_F(GenerationTest, StopsOnAStopTokenWithoutShowingIt) {
  ScriptedExecutor executor({15339, 100265, 15339});
  BlockAllocator blocks(64, 4);
  const GenerationResult result = generate(executor, blocks, *tokenizer_, request(3, 10), [](std::string_view) {});
  EXPECT_EQ(result.finishReason, FinishReason::kStop);
  ASSERT_EQ(result.tokens.size(), 2u);
  EXPECT_EQ(result.tokens[1].id, 100265);
  EXPECT_EQ(result.text, "hello");
}

TEST_F(GenerationTest, StopsBeforeAStopString) {
  const std::vector<int32_t> ids = tokenizer_->encode("one two three four");
  ScriptedExecutor executor(ids);
  BlockAllocator blocks(64, 4);
  GenerationRequest r = request(3, 10);
  r.params.stopStrings = {" thr"};
  std::string streamed;
  const GenerationResult result =
      generate(executor, blocks, *tokenizer_, r, [&](std::string_view text) { streamed += text; });
  EXPECT_EQ(result.finishReason, FinishReason::kStop);
  EXPECT_EQ(result.text, "one two");
  EXPECT_EQ(streamed, "one two");
}

TEST_F(GenerationTest, EndsWithLengthWhenTheKvPoolIsFull) {
  ScriptedExecutor executor(std::vector<int32_t>(50, 15339), 3);
  BlockAllocator blocks(3, 4);  // 12 tokens: a 5-token prompt leaves room for 7 more positions
  const GenerationResult result = generate(executor, blocks, *tokenizer_, request(5, 40), [](std::string_view) {});
  EXPECT_EQ(result.finishReason, FinishReason::kLength);
  EXPECT_EQ(result.tokens.size(), 8u);  // the 8th is sampled from the step at position 11, the last slot
  EXPECT_EQ(blocks.freeBlocks(), 3);
}

TEST_F(GenerationTest, RefusesAPromptTheCacheCannotHold) {
  ScriptedExecutor executor({1}, 2);
  BlockAllocator blocks(2, 4);
  try {
    generate(executor, blocks, *tokenizer_, request(9, 4), [](std::string_view) {});
    FAIL() << "a 9-token prompt fit 8 slots";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kOverloaded);
  }
  EXPECT_EQ(blocks.freeBlocks(), 2);
  EXPECT_THROW(generate(executor, blocks, *tokenizer_, request(0, 4), [](std::string_view) {}), Error);
}

TEST_F(GenerationTest, CancellationStopsBetweenSteps) {
  ScriptedExecutor executor(std::vector<int32_t>(50, 15339));
  BlockAllocator blocks(64, 4);
  std::atomic<bool> cancel{false};
  int pieces = 0;
  const GenerationResult result = generate(executor, blocks, *tokenizer_, request(3, 40), [&](std::string_view) {
    if (++pieces == 3) cancel = true;
  }, &cancel);
  EXPECT_EQ(result.finishReason, FinishReason::kCancelled);
  EXPECT_EQ(result.tokens.size(), 3u);
  EXPECT_EQ(blocks.freeBlocks(), 64);
}

}  // namespace
}  // namespace phx
