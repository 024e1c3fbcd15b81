#include "worker/step_layout.h"

#include <gtest/gtest.h>

#include <limits>

#include "common/error.h"

namespace phx {
namespace {

constexpr StepLimits kLimits{.vocabSize = 100, .blockSize = 4, .numBlocks = 8, .maxPositions = 64};

// A prefill chunk of 3 tokens after 5 cached ones, and a decode token at position 2, blocks scattered.
StepBatch mixedBatch() {
  StepBatch batch;
  batch.tokens = {10, 11, 12, 13};
  batch.sequences.push_back({.cachedTokens = 5, .newTokens = 3, .blockTable = {6, 1}, .logits = LogitsFor::kAll});
  batch.sequences.push_back({.cachedTokens = 2, .newTokens = 1, .blockTable = {3}, .logits = LogitsFor::kLast});
  return batch;
}

TEST(StepLayoutTest, DerivesPositionsSlotsAndLogitRows) {
  const StepLayout layout = layoutStep(mixedBatch(), kLimits);
  EXPECT_EQ(layout.tokenCount, 4);
  EXPECT_EQ(layout.positions, (std::vector<int64_t>{5, 6, 7, 2}));
  // position 5 -> block table[1] = 1, offset 1 -> slot 5; 6 -> 6; 7 -> 7; sequence 1: block 3, offset 2 -> 14
  EXPECT_EQ(layout.cacheSlots, (std::vector<int64_t>{5, 6, 7, 14}));
  EXPECT_EQ(layout.firstToken, (std::vector<int64_t>{0, 3, 4}));
  EXPECT_EQ(layout.logitTokens, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(layout.maxContext, 8);
}

TEST(StepLayoutTest, LogitsForNoneAndLast) {
  StepBatch batch = mixedBatch();
  batch.sequences[0].logits = LogitsFor::kNone;
  EXPECT_EQ(layoutStep(batch, kLimits).logitTokens, (std::vector<int64_t>{3}));
  batch.sequences[0].logits = LogitsFor::kLast;
  EXPECT_EQ(layoutStep(batch, kLimits).logitTokens, (std::vector<int64_t>{2, 3}));
}

void expectRejected(const StepBatch& batch, const std::string& fragment) {
  try {
    layoutStep(batch, kLimits);
    ADD_FAILURE() << "accepted a batch that should fail with '" << fragment << "'";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
  }
}

TEST(StepLayoutTest, RejectsMalformedBatchesNamingTheField) {
  StepBatch batch = mixedBatch();
  batch.tokens.push_back(1);
  expectRejected(batch, "add up to 4 tokens but the batch carries 5");

  batch = mixedBatch();
  batch.tokens[1] = 100;
  expectRejected(batch, "token 1 has id 100");

  batch = mixedBatch();
  batch.sequences[0].blockTable = {6};
  expectRejected(batch, "sequence 0: block table has 1 blocks");

  batch = mixedBatch();
  batch.sequences[1].blockTable = {8};
  expectRejected(batch, "block id 8 is outside the KV pool");

  batch = mixedBatch();
  batch.sequences[1].newTokens = 0;
  expectRejected(batch, "sequence 1: newTokens must be in [1, 64], got 0");

  batch = mixedBatch();
  batch.sequences[0].cachedTokens = 62;
  batch.sequences[0].blockTable = std::vector<int32_t>(16, 0);
  expectRejected(batch, "must stay within the model's 64 positions");

  batch = mixedBatch();
  batch.sequences[1].blockTable = {1};  // sequence 1 writes position 2 of block 1: sequence 0 writes 5, 6, 7 there
  batch.sequences[1].cachedTokens = 1;
  expectRejected(batch, "two tokens write KV slot 5");

  expectRejected(StepBatch{}, "no sequences");
}

// Issue 11: cachedTokens = INT64_MAX with one new token wrapped the sum past every check and crashed the worker.
TEST(StepLayoutTest, RejectsFieldsWhoseSumsWouldOverflow) {
  constexpr int64_t kHuge = std::numeric_limits<int64_t>::max();
  StepBatch batch = mixedBatch();
  batch.sequences[1].cachedTokens = kHuge;
  expectRejected(batch, "sequence 1: cachedTokens 9223372036854775807 plus newTokens 1 must stay within");

  batch = mixedBatch();
  batch.sequences[1].newTokens = kHuge;
  expectRejected(batch, "sequence 1: newTokens must be in [1, 64]");

  batch = mixedBatch();
  batch.sequences[1].cachedTokens = -kHuge;
  expectRejected(batch, "sequence 1: cachedTokens -9223372036854775807");
}

TEST(StepLayoutTest, RejectsMoreTokensThanTheWorkerWasSizedFor) {
  StepLimits limits = kLimits;
  limits.maxStepTokens = 3;
  try {
    layoutStep(mixedBatch(), limits);
    ADD_FAILURE() << "accepted 4 tokens in a step sized for 3";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("carries 4 tokens, more than the 3"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace phx
